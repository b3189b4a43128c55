// Patches applied to @rrweb/record (dist/record.js, 2.1.x) when build.mjs bundles it into dist/recorder.js
// (issue 21, the recorder's cost). Each patch replaces an exact piece of rrweb's source; a piece that is not
// found exactly once fails the build, so an rrweb upgrade cannot drop a patch silently.
//
// 1. A sliced full snapshot (the record option `snapshotSlicing: {budgetMs, onDone}`): rrweb serializes the
//    whole page in one task (~250 ms for 5,000 elements on our benchmark page). Sliced, the walk serializes
//    nodes for at most budgetMs per task and yields between slices (to the next frame's layout). So that
//    the replay stays consistent with a page that changes meanwhile:
//    - the observers start before the walk, and the mutation buffers stay locked during it: mutations are
//      collected and emitted once, right after the full snapshot, as with rrweb's own snapshot;
//    - a node is serialized only if it is still a child of the parent it was queued under, was not
//      serialized already, and is not in a buffer's added/moved set: then the mutation that moved or added
//      it emits it (with its subtree), and the snapshot does not have it twice;
//    - attribute and text changes of nodes serialized later are idempotent (the final value either way);
//    - every event rrweb emits during the walk (input, scroll, mouse, custom events) is held back and
//      emitted after the Meta and FullSnapshot events, which carry the walk's start time, so that the
//      stream stays in time order and no event refers to a node the replay has not built yet.
// 2. Forced layouts: reading scroll offsets (every element's, in the snapshot) or the selection makes the
//    browser lay out the page first when the page has changed since its last layout (24-56 ms for the
//    benchmark page's table, with the machine loaded), in the recorder's task. The slices run right after
//    the page's layout in a frame (afterNextFrame), and so do rrweb's reads of the selection (at the start,
//    and on every selectionchange: typing) and of scroll offsets on scroll events (its throttle still sets
//    the pace; the offset is the one after the frame).
// 3. Per-node costs of the snapshot that change nothing in its output:
//    - rrweb lists the methods querySelector/querySelectorAll as accessors of Element, so its check that
//      Element is untainted always fails and it creates (and removes) a hidden iframe in the page during
//      the first snapshot to fetch a clean prototype;
//    - `delete serializedNode.needBlock` turns every serialized node into a slow dictionary-mode object
//      (slower to build and to JSON.stringify); set to undefined, JSON.stringify leaves it out the same way;
//    - customElements.get(tagName) for every element: a custom element's name always contains a hyphen.

const SLICED_SNAPSHOT = `
  // sessiontrace patch: the sliced full snapshot (scripts/rrweb-patches.mjs).
  let cancelSlicedSnapshot = null;
  const takeSlicedFullSnapshot = () => {
    const budgetMs = snapshotSlicing.budgetMs || 10;
    const startedAt = nowTimestamp();
    const walkStart = performance.now();
    let meta = null;
    let initialOffset = null;
    stylesheetManager.reset();
    shadowDomManager.init();
    const lockAll = () => mutationBuffers.forEach((buf) => buf.lock());
    lockAll();
    heldEvents = [];
    const queue = [];
    let head = 0;
    let slices = 0;
    let longestSliceMs = 0;
    let cancelled = false;
    let finished = false;
    let hurry = false;
    cancelSlicedSnapshot = () => {
      cancelled = true;
      heldEvents = null;
      cancelSlicedSnapshot = null;
    };
    const inBuffers = (n) => mutationBuffers.some((buf) => buf.addedSet.has(n) || buf.movedSet.has(n));
    const defer = (childN, childOptions, parentSn, parentN) => {
      queue.push([childN, childOptions, parentSn, parentN]);
    };
    let root = null;
    const finish = () => {
      finished = true;
      snapshotSlicing.finishNow = null;
      const held = heldEvents;
      heldEvents = null;
      cancelSlicedSnapshot = null;
      wrappedEmit({ type: EventType.Meta, data: meta }, false, startedAt);
      wrappedEmit({ type: EventType.FullSnapshot, data: { node: root, initialOffset } }, false, startedAt);
      for (const [e, isCheckout, timestamp] of held) wrappedEmit(e, isCheckout, timestamp);
      mutationBuffers.forEach((buf) => buf.unlock());
      if (document.adoptedStyleSheets && document.adoptedStyleSheets.length > 0)
        stylesheetManager.adoptStyleSheets(document.adoptedStyleSheets, mirror.getId(document));
      if (snapshotSlicing.onDone)
        snapshotSlicing.onDone({ slices, longestSliceMs, totalMs: performance.now() - walkStart, nodes: head });
    };
    const step = () => {
      if (cancelled || finished) return;
      const t0 = performance.now();
      if (!root) {
        meta = { href: window.location.href, width: getWindowWidth(), height: getWindowHeight() };
        initialOffset = getWindowScroll(window);
        root = snapshot(document, {
          mirror, blockClass, blockSelector, maskTextClass, maskTextSelector, inlineStylesheet,
          maskAllInputs: maskInputOptions, maskTextFn, maskInputFn, slimDOM: slimDOMOptions, dataURLOptions,
          recordCanvas, inlineImages,
          onSerialize: (n) => {
            if (isSerializedIframe(n, mirror)) iframeManager.addIframe(n);
            if (isSerializedStylesheet(n, mirror)) stylesheetManager.trackLinkElement(n);
            if (hasShadowRoot(n)) shadowDomManager.addShadowRoot(index.shadowRoot(n), document);
          },
          onIframeLoad: (iframe, childSn) => {
            iframeManager.attachIframe(iframe, childSn);
            shadowDomManager.observeAttachShadow(iframe);
          },
          onStylesheetLoad: (linkEl, childSn) => stylesheetManager.attachLinkElement(linkEl, childSn),
          keepIframeSrcFn,
          defer
        });
        if (!root) {
          cancelSlicedSnapshot();
          mutationBuffers.forEach((buf) => buf.unlock());
          return console.warn("Failed to snapshot the document");
        }
      }
      // A hidden page has no one to keep waiting, and its timers are throttled (to one a minute, after a
      // while): the walk ends in this slice.
      const budget = hurry || document.visibilityState === "hidden" ? Infinity : budgetMs;
      let count = 0;
      while (head < queue.length) {
        const [n, childOptions, parentSn, parentN] = queue[head];
        queue[head++] = void 0;
        if (index.parentNode(n) !== parentN || mirror.hasNode(n) || inBuffers(n)) continue;
        const sn = serializeNodeWithId(n, childOptions);
        if (sn) parentSn.childNodes.push(sn);
        if ((++count & 15) === 0 && performance.now() - t0 >= budget) break;
      }
      slices++;
      longestSliceMs = Math.max(longestSliceMs, performance.now() - t0);
      if (head < queue.length) {
        lockAll(); // buffers made meanwhile (a shadow root's) too
        afterNextFrame(step);
      } else {
        finish();
      }
    };
    // The page is going away (pagehide): the rest of the walk now, in this task, so that the snapshot and
    // the events held back during it are emitted before the last flush instead of lost with the page.
    snapshotSlicing.finishNow = () => {
      hurry = true;
      step();
    };
    // Not in the task that started the observers (which is the page's or the recorder's start): that one
    // is long enough already.
    afterNextFrame(step);
  };
`;

// Runs fn right after the page's next layout: in a ResizeObserver callback, which the browser calls in the
// rendering of a frame after style and layout, so reading layout (scroll offsets, every element's, in the
// snapshot; the selection) does not lay the page out again in the recorder's task. After a timer, a task
// of the page could have changed the DOM first: with the benchmark page's table that forced layout was
// 15-40 ms in most slices (machine loaded). The observer is made in a task of its own (made inside another
// ResizeObserver callback, its first notification would be an undelivered loop error on the page). Hidden
// pages render no frames, and a frame may be late: a timer runs fn then.
const AFTER_NEXT_FRAME = `function afterNextFrame(fn) {
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    fn();
  };
  if (typeof ResizeObserver !== "function" || document.visibilityState === "hidden" || !document.documentElement)
    return void setTimeout(run, 0);
  setTimeout(() => {
    if (done) return;
    const observer = new ResizeObserver(() => {
      observer.disconnect();
      run();
    });
    observer.observe(document.documentElement);
  }, 0);
  setTimeout(run, 200);
}
`;

const SCROLL_FIND = `      callbackWrapper((evt) => {
        const target = getEventTarget(evt);
        if (!target || isBlocked(target, blockClass, blockSelector, true)) {
          return;
        }`;
const SCROLL_REPLACE = `      callbackWrapper((evt) => {
        const target = getEventTarget(evt);
        afterNextFrame(callbackWrapper(() => {
        if (!target || isBlocked(target, blockClass, blockSelector, true)) {
          return;
        }`;

export const PATCHES = [
  // 1. The sliced snapshot.
  {
    what: 'serializeNodeWithId takes a `defer` option',
    find: '    newlyAddedElement = false,\n    cssCaptured = false\n  } = options;\n  let { needsMask } = options;',
    replace: '    newlyAddedElement = false,\n    cssCaptured = false,\n    defer\n  } = options;\n  let { needsMask } = options;',
  },
  {
    what: 'and passes it on to the children',
    find: '      keepIframeSrcFn,\n      cssCaptured: false\n    };',
    replace: '      keepIframeSrcFn,\n      defer,\n      cssCaptured: false\n    };',
  },
  {
    what: 'with `defer`, children are queued instead of serialized now',
    find: '      for (const childN of Array.from(index.childNodes(n))) {\n        const serializedChildNode',
    replace: '      for (const childN of Array.from(index.childNodes(n))) {\n        if (defer) {\n          defer(childN, bypassOptions, serializedNode, n);\n          continue;\n        }\n        const serializedChildNode',
  },
  {
    what: 'shadow root children too',
    find: '      for (const childN of Array.from(index.childNodes(shadowRootEl))) {\n        const serializedChildNode',
    replace: '      for (const childN of Array.from(index.childNodes(shadowRootEl))) {\n        if (defer) {\n          defer(childN, bypassOptions, serializedNode, shadowRootEl);\n          continue;\n        }\n        const serializedChildNode',
  },
  {
    what: 'snapshot() passes `defer` on',
    find: '    keepIframeSrcFn,\n    newlyAddedElement: false\n  });\n}',
    replace: '    keepIframeSrcFn,\n    defer: options.defer,\n    newlyAddedElement: false\n  });\n}',
  },
  {
    what: 'events held back during a sliced snapshot; afterNextFrame',
    find: 'let recording = false;\n',
    replace: 'let recording = false;\nlet heldEvents = null;\n' + AFTER_NEXT_FRAME,
  },
  {
    what: 'the record option',
    find: '    ignoreCSSAttributes = /* @__PURE__ */ new Set([]),\n    errorHandler: errorHandler2\n  } = options;',
    replace: '    ignoreCSSAttributes = /* @__PURE__ */ new Set([]),\n    errorHandler: errorHandler2,\n    snapshotSlicing = null\n  } = options;',
  },
  {
    what: 'wrappedEmit takes a timestamp and holds events back during the walk',
    find: '  wrappedEmit = (r, isCheckout) => {\n    var _a2;\n    const e = r;\n    e.timestamp = nowTimestamp();',
    replace: '  wrappedEmit = (r, isCheckout, timestamp) => {\n    var _a2;\n    const e = r;\n    e.timestamp = timestamp || nowTimestamp();\n' +
      '    if (heldEvents) {\n      heldEvents.push([e, isCheckout, e.timestamp]);\n      return;\n    }',
  },
  {
    what: 'the walk, next to the synchronous snapshot',
    find: '  try {\n    const handlers = [];\n    const observe = (doc) => {',
    replace: SLICED_SNAPSHOT + '  try {\n    const handlers = [];\n    const observe = (doc) => {',
  },
  {
    what: 'the first snapshot sliced: observers first',
    find: '    const init = () => {\n      takeFullSnapshot();',
    replace: '    const init = () => {\n      if (snapshotSlicing && recordDOM) {\n        handlers.push(observe(document));\n        recording = true;\n        takeSlicedFullSnapshot();\n        return;\n      }\n      takeFullSnapshot();',
  },
  {
    what: 'stopping ends a walk in progress',
    find: '    return () => {\n      handlers.forEach((handler) => {',
    replace: '    return () => {\n      if (cancelSlicedSnapshot) cancelSlicedSnapshot();\n      handlers.forEach((handler) => {',
  },
  // 2. Forced layouts.
  {
    what: 'the selection read after the next layout, at the start and on selectionchange (typing is one)',
    find: '  updateSelection();\n  return on("selectionchange", updateSelection);',
    replace: '  let selectionPending = false;\n  const updateSelectionSoon = () => {\n    if (selectionPending) return;\n' +
      '    selectionPending = true;\n    afterNextFrame(() => {\n      selectionPending = false;\n      updateSelection();\n    });\n  };\n' +
      '  updateSelectionSoon();\n  return on("selectionchange", updateSelectionSoon);',
  },
  {
    what: 'scroll offsets read after the next layout (the target now, from the event)',
    find: SCROLL_FIND,
    replace: SCROLL_REPLACE,
  },
  {
    what: '(its end)',
    find: '            x: target.scrollLeft,\n            y: target.scrollTop\n          });\n        }\n      }),\n      sampling.scroll || 100',
    replace: '            x: target.scrollLeft,\n            y: target.scrollTop\n          });\n        }\n        }));\n      }),\n      sampling.scroll || 100',
  },
  // 3. Per-node costs.
  {
    what: 'querySelector(All) are methods, not accessors',
    find: '  Element: ["shadowRoot", "querySelector", "querySelectorAll"],',
    replace: '  Element: ["shadowRoot"],',
  },
  {
    what: '(listed as methods)',
    find: '  ShadowRoot: ["getSelection"],\n  Element: [],',
    replace: '  ShadowRoot: ["getSelection"],\n  Element: ["querySelector", "querySelectorAll"],',
  },
  {
    what: 'serialized nodes keep fast properties',
    find: '    delete serializedNode.needBlock;',
    replace: '    serializedNode.needBlock = void 0;',
  },
  {
    what: 'customElements.get only for names with a hyphen',
    find: '    if (customElements.get(tagName)) isCustomElement = true;',
    replace: '    if (tagName.includes("-") && customElements.get(tagName)) isCustomElement = true;',
  },
];

/** rrweb's record.js source with PATCHES applied; throws when a piece is not found exactly once. */
export function patchRrwebRecord(source) {
  let out = source;
  for (const { what, find, replace } of PATCHES) {
    const count = out.split(find).length - 1;
    if (count !== 1) throw new Error(`rrweb patch "${what}": expected its piece of @rrweb/record once, found ${count} times`);
    out = out.replace(find, () => replace);
  }
  return out;
}

/** An esbuild plugin that applies the patches to @rrweb/record/dist/record.js. */
export const rrwebPatchPlugin = {
  name: 'sessiontrace-rrweb-patches',
  setup(build) {
    build.onLoad({ filter: /[\\/]@rrweb[\\/]record[\\/]dist[\\/]record\.js$/ }, async (args) => {
      const { readFile } = await import('node:fs/promises');
      return { contents: patchRrwebRecord(await readFile(args.path, 'utf8')), loader: 'js' };
    });
  },
};
