// Lint rules. The raft core must stay pure (DESIGN.md §3): no node:* imports, no imports from
// other layers, no clock, timers, Math.random or async code. These rules make that a build error.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const impureGlobals = [
  { name: 'setTimeout', message: 'the raft core has no timers: time arrives through tick()' },
  { name: 'setInterval', message: 'the raft core has no timers: time arrives through tick()' },
  { name: 'setImmediate', message: 'the raft core has no timers' },
  { name: 'queueMicrotask', message: 'the raft core is synchronous' },
  { name: 'Date', message: 'the raft core has no clock: time arrives through tick()' },
  { name: 'performance', message: 'the raft core has no clock' },
  { name: 'process', message: 'the raft core does no I/O' },
  { name: 'require', message: 'the raft core imports nothing outside src/raft' },
  { name: 'fetch', message: 'the raft core does no I/O' },
  { name: 'crypto', message: 'randomness comes from the injected PRNG' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/web/static/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['src/raft/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'the raft core imports nothing from node:*' },
            { group: ['../*', '!./*'], message: 'the raft core imports only from src/raft' },
            { regex: '^[^.]', message: 'the raft core imports no packages' },
          ],
        },
      ],
      'no-restricted-globals': ['error', ...impureGlobals],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'use the injected PRNG' },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'FunctionDeclaration[async=true]', message: 'the raft core is synchronous' },
        { selector: 'ArrowFunctionExpression[async=true]', message: 'the raft core is synchronous' },
        { selector: 'FunctionExpression[async=true]', message: 'the raft core is synchronous' },
        { selector: 'AwaitExpression', message: 'the raft core is synchronous' },
        { selector: "NewExpression[callee.name='Promise']", message: 'the raft core is synchronous' },
      ],
    },
  },
);
