// Paging of GET /v1/kv. A listing is read page by page, like etcd's range with a limit or Consul's
// KV list: keys in order, strictly after the `after` cursor, at most `limit` of them, and no more
// encoded bytes than listResponseBytesMax, so that one request costs a bounded amount of work on
// the event loop however many keys the store holds.
//
// Each page is read from one state (its `revision`); pages of one listing may come from different
// revisions. A key that exists throughout the listing is returned exactly once; a key created or
// deleted between two pages may or may not appear.
import assert from 'node:assert/strict';
import type { KvEntryView, KvListPageView } from './backend.js';
import { kvListLimitMax } from '../state/kv-types.js';

/** Items per page when the request gives no `limit`. */
export const listLimitDefault = 100;
/** Largest `limit` a request may give; a larger one is refused, not clamped. */
export const listLimitMax = 1000;
/**
 * Encoded bytes of the items of one page (their JSON, separators included) beyond which the page
 * ends early. A page always holds at least one item, so a single large value can still be read:
 * a response is at most this, or one item, plus its envelope.
 */
export const listResponseBytesMaxDefault = 1024 * 1024;

/** The JSON body of a GET /v1/kv answer. */
export interface KvListResponseBody {
  items: KvEntryView[];
  /** True when keys with the prefix follow the last item (cut by `limit` or by the byte budget). */
  more: boolean;
  /** The last key returned when `more`, to pass as `after` for the next page; else null. */
  next: string | null;
  /** The revision of the one state every item of this page was read from. */
  revision: number;
}

// The store must be able to serve the largest page in one call.
assert(listLimitMax <= kvListLimitMax);

/**
 * The response body of one page: `{ items, more, next, revision }`. Items are encoded one by one
 * and the page is cut before the item that would take it past `responseBytesMax`; then `more` is
 * true and `next` (the last key returned) is where the next request continues.
 */
export function encodeKvListPage(page: KvListPageView, responseBytesMax: number): string {
  assert(page.items.length > 0 || !page.more, 'a page that says more follow holds an item');
  const parts: string[] = [];
  let bytes = 0;
  let cut = false;
  for (const item of page.items) {
    // UTF-16 length is a lower bound of the encoded bytes: skip encoding an item that cannot fit.
    const bytesAtLeast = item.key.length + item.value.length;
    if (parts.length > 0 && bytes + bytesAtLeast > responseBytesMax) {
      cut = true;
      break;
    }
    const text = JSON.stringify(item);
    const itemBytes = Buffer.byteLength(text, 'utf8') + (parts.length > 0 ? 1 : 0);
    if (parts.length > 0 && bytes + itemBytes > responseBytesMax) {
      cut = true;
      break;
    }
    parts.push(text);
    bytes += itemBytes;
  }
  const more = cut || page.more;
  const next = more ? page.items[parts.length - 1].key : null;
  return `{"items":[${parts.join(',')}],"more":${more},"next":${JSON.stringify(next)},"revision":${page.revision}}`;
}
