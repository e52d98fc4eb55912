/** Which request fields leave a request to the lean downstream path (downstream-h1.ts). */

import { isFieldName } from './field-name.ts';

/** node:http's maxHeadersCount (2000 pairs): past it node:http drops fields, so such a request is node:http's. */
const MAX_RAW_HEADERS = 4000;

/**
 * True when the request's fields leave it to the lean path: a Host (node:http answers an HTTP/1.1
 * request without one 400), and none of Content-Length, Transfer-Encoding (a body), Expect or Upgrade.
 */
export function leanHeaders(raw: readonly string[]): boolean {
  if (raw.length > MAX_RAW_HEADERS) return false;
  let host = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    switch (name.length) {
      case 4:
        if (isFieldName(name, 'host')) host = true;
        break;
      case 6:
        if (isFieldName(name, 'expect')) return false;
        break;
      case 7:
        if (isFieldName(name, 'upgrade')) return false;
        break;
      case 14:
        if (isFieldName(name, 'content-length')) return false;
        break;
      case 17:
        if (isFieldName(name, 'transfer-encoding')) return false;
        break;
    }
  }
  return host;
}
