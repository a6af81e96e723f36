// Write Weft proxy plugins in JavaScript.
//
// A plugin is a class: its constructor takes the configuration text (throw
// to reject it), and it defines the hooks it implements; the proxy calls no
// others. `exportPlugin` turns it into the component's `filter` export:
//
//     import { exportPlugin } from './weft-plugin.js';
//
//     class AddHeader {
//       constructor(config) {
//         ({ name: this.name, value: this.value } = JSON.parse(config));
//       }
//       onRequest(req) {
//         req.setHeader(this.name, this.value);
//       }
//     }
//
//     export const filter = exportPlugin(AddHeader);
//
// A hook that returns nothing lets the request (or response) through;
// `respond(403, 'denied')` answers the client instead, `RETRY` asks for the
// request to be sent again. `weft plugin build` puts this module beside the
// project's `filter.js`; the imports below are the `weft:plugin` WIT's, bound
// by componentize-js.

import * as log from 'weft:plugin/log@0.1.0';
import * as metrics from 'weft:plugin/metrics@0.1.0';

export * as clock from 'weft:plugin/clock@0.1.0';
export * as random from 'weft:plugin/random@0.1.0';
export * as shared from 'weft:plugin/shared@0.1.0';

const CONTINUE = { tag: 'continue' };

/** `onResponse`: send the request again (see `req.replayable()`). */
export const RETRY = { tag: 'retry' };
/** `onConnection`: close the connection. */
export const DENY = 'deny';

/** `onRequest`: answer the client now; nothing goes upstream. */
export function respond(status, body = '', headers = []) {
  return { tag: 'respond', val: { status, headers, body } };
}

const HOOKS = {
  onConnection: 'connection',
  onRequest: 'request',
  onResponse: 'response',
  onComplete: 'completion',
};

/** The `filter` export, running instances of `Plugin`. */
export function exportPlugin(Plugin) {
  const hooks = {};
  for (const [method, flag] of Object.entries(HOOKS)) {
    hooks[flag] = typeof Plugin.prototype[method] === 'function';
  }
  let plugin;
  return {
    init(config) {
      try {
        plugin = new Plugin(config);
      } catch (e) {
        // The `err` of `init`'s result: why the configuration is rejected.
        throw { payload: String(e instanceof Error ? e.message : e) };
      }
      return hooks;
    },
    onConnection: (conn) => plugin.onConnection?.(conn) ?? 'allow',
    onRequest: (req) => plugin.onRequest?.(req) ?? CONTINUE,
    onResponse: (req, rsp) => plugin.onResponse?.(req, rsp) ?? CONTINUE,
    onComplete: (req, info) => {
      plugin.onComplete?.(req, info);
    },
  };
}

// === logging: lines carry the plugin's name in the proxy's log ===

const logger = (level) => (message) => {
  if (log.enabled(level)) log.log(level, String(message));
};
export const debug = logger('debug');
export const info = logger('info');
export const warn = logger('warn');
export const error = logger('error');

// === metrics: register once, record through cached series handles ===

// Bounded like the Rust SDK's SeriesCache, so a client sending a new label
// value per request cannot grow the plugin's memory.
const MAX_CACHED_SERIES = 4096;

class Family {
  constructor(family) {
    this.family = family;
    this.series = new Map();
  }
  handle(labels) {
    const key = labels.join('\u0000');
    let handle = this.series.get(key);
    if (handle === undefined) {
      handle = metrics.series(this.family, labels);
      if (this.series.size < MAX_CACHED_SERIES) this.series.set(key, handle);
    }
    return handle;
  }
}

/** A counter family on the proxy's `/metrics`. */
export class Counter extends Family {
  constructor(name, help, labelNames = []) {
    super(metrics.registerCounter(name, help, labelNames));
  }
  add(labels = [], value = 1n) {
    metrics.counterAdd(this.handle(labels), BigInt(value));
  }
}

/** A histogram family on the proxy's `/metrics`. */
export class Histogram extends Family {
  constructor(name, help, labelNames, buckets) {
    super(metrics.registerHistogram(name, help, labelNames, buckets));
  }
  observe(labels, value) {
    metrics.histogramObserve(this.handle(labels), value);
  }
}
