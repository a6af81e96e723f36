// The guide's example filter: adds one configured header to every request
// and every response. Configure it with
// `{"name": "x-weft-example", "value": "hello"}`.

import { exportPlugin } from './weft-plugin.js';

// A header name is an RFC 9110 token.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

class AddHeader {
  constructor(config) {
    const { name, value } = JSON.parse(config);
    // Refuse a bad header at startup rather than on every request.
    if (typeof name !== 'string' || !HEADER_NAME.test(name)) {
      throw new Error(`invalid header name ${JSON.stringify(name)}`);
    }
    if (typeof value !== 'string' || /[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) {
      throw new Error(`invalid header value ${JSON.stringify(value)}`);
    }
    this.name = name;
    this.value = value;
  }

  onRequest(req) {
    req.setHeader(this.name, this.value);
  }

  onResponse(req, rsp) {
    rsp.setHeader(this.name, this.value);
  }
}

export const filter = exportPlugin(AddHeader);
