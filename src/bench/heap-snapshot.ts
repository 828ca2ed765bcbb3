/**
 * A small V8 heap snapshot (.heapsnapshot) reader and analysis for src/bench/heap.ts: what
 * one cached workflow is made of. No dependencies; the file is read into one Buffer (up to
 * 4 GB) and scanned in place, so snapshots of several hundred MB are fine.
 *
 *  - summary(): self sizes aggregated by "class" (constructor name, or the V8 node type for
 *    internals), the same grouping as the DevTools Summary view;
 *  - diffSummaries(): the difference between two summaries per workflow (e.g. 0 and N cached);
 *  - dominators(): the dominator tree and retained sizes (Cooper, Harvey and Kennedy's iterative
 *    algorithm over a post-order, weak edges ignored, as DevTools does);
 *  - workflowBreakdown(): per cached workflow (each `ReusableVMWorkflow` / `VMWorkflow` object):
 *    its retained size, what that is made of by class, which webpack modules of the bundle
 *    (re-evaluated per workflow) retain it, and a drill-down of one representative workflow.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

interface Meta {
  node_fields: string[];
  node_types: [string[], ...unknown[]];
  edge_fields: string[];
  edge_types: [string[], ...unknown[]];
}

export interface HeapGraph {
  nodeCount: number;
  edgeCount: number;
  /** Per node: type index, name (string index), self size, first edge index (CSR, nodeCount + 1 entries). */
  nodeType: Uint8Array;
  nodeName: Uint32Array;
  selfSize: Float64Array;
  firstEdge: Uint32Array;
  /** Per edge: type index, name or index, target node index. */
  edgeType: Uint8Array;
  edgeName: Uint32Array;
  edgeTo: Uint32Array;
  strings: string[];
  nodeTypes: string[];
  edgeTypes: string[];
}

const MAX_NAME = 160;

function readWhole(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, Math.min(1 << 30, size - off), off);
      if (n <= 0) throw new Error(`short read of ${file} at ${off}`);
      off += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** Parse a .heapsnapshot file into typed arrays (strings truncated to 160 characters: they are only names here). */
export function readHeapSnapshot(file: string): HeapGraph {
  const buf = readWhole(file);
  const find = (needle: string, from: number): number => {
    const i = buf.indexOf(needle, from, 'latin1');
    if (i < 0) throw new Error(`${file}: no ${needle} in the snapshot`);
    return i;
  };
  const nodesAt = find('"nodes":[', 0);
  const header = buf.toString('utf8', 0, nodesAt).trim().replace(/,$/, '') + '}';
  const snapshot = (JSON.parse(header) as { snapshot: { meta: Meta; node_count: number; edge_count: number } })
    .snapshot;
  const { meta } = snapshot;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const fi = (name: string, fields: string[]): number => {
    const i = fields.indexOf(name);
    if (i < 0) throw new Error(`${file}: no field ${name}`);
    return i;
  };
  const [nType, nName, nSelf, nEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) =>
    fi(f, meta.node_fields),
  ) as [number, number, number, number];
  const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => fi(f, meta.edge_fields)) as [
    number,
    number,
    number,
  ];

  let pos = nodesAt + '"nodes":['.length;
  // Reads the next unsigned integer (snapshot arrays hold only non-negative integers).
  const nextInt = (): number => {
    let c = buf[pos]!;
    while (c < 48 || c > 57) c = buf[++pos]!;
    let v = 0;
    while (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      c = buf[++pos]!;
    }
    return v;
  };

  const nodeCount = snapshot.node_count;
  const edgeCount = snapshot.edge_count;
  const nodeType = new Uint8Array(nodeCount);
  const nodeName = new Uint32Array(nodeCount);
  const selfSize = new Float64Array(nodeCount);
  const firstEdge = new Uint32Array(nodeCount + 1);
  let e = 0;
  for (let n = 0; n < nodeCount; n++) {
    firstEdge[n] = e;
    for (let f = 0; f < nf; f++) {
      const v = nextInt();
      if (f === nType) nodeType[n] = v;
      else if (f === nName) nodeName[n] = v;
      else if (f === nSelf) selfSize[n] = v;
      else if (f === nEdges) e += v;
    }
  }
  firstEdge[nodeCount] = e;
  if (e !== edgeCount) throw new Error(`${file}: node edge counts add up to ${e}, the snapshot says ${edgeCount}`);
  pos = find('"edges":[', pos) + '"edges":['.length;
  const edgeType = new Uint8Array(edgeCount);
  const edgeName = new Uint32Array(edgeCount);
  const edgeTo = new Uint32Array(edgeCount);
  for (let i = 0; i < edgeCount; i++) {
    for (let f = 0; f < ef; f++) {
      const v = nextInt();
      if (f === eType) edgeType[i] = v;
      else if (f === eName) edgeName[i] = v;
      else if (f === eTo) edgeTo[i] = v / nf;
    }
  }
  // The strings array is the last one; a string is a JSON string literal.
  pos = find('"strings":[', pos) + '"strings":['.length;
  const strings: string[] = [];
  for (;;) {
    let c = buf[pos]!;
    while (c !== 34 /* " */ && c !== 93 /* ] */) c = buf[++pos]!;
    if (c === 93) break;
    const start = pos;
    let escaped = false;
    pos++;
    for (;;) {
      c = buf[pos]!;
      if (c === 92 /* \ */) {
        escaped = true;
        pos += 2;
        continue;
      }
      if (c === 34) break;
      pos++;
    }
    const end = Math.min(pos, start + 1 + MAX_NAME * 4);
    let s: string;
    if (!escaped) s = buf.toString('utf8', start + 1, end);
    else {
      try {
        s = JSON.parse(buf.toString('utf8', start, pos + 1)) as string;
      } catch {
        s = buf.toString('utf8', start + 1, end);
      }
    }
    strings.push(s.length > MAX_NAME ? s.slice(0, MAX_NAME) : s);
    pos++;
  }
  return {
    nodeCount,
    edgeCount,
    nodeType,
    nodeName,
    selfSize,
    firstEdge,
    edgeType,
    edgeName,
    edgeTo,
    strings,
    nodeTypes: meta.node_types[0],
    edgeTypes: meta.edge_types[0],
  };
}

/** The DevTools-like class of a node: the constructor name for objects, the V8 node type otherwise. */
export function nodeClass(g: HeapGraph, n: number): string {
  const type = g.nodeTypes[g.nodeType[n]!]!;
  const name = g.strings[g.nodeName[n]!] ?? '';
  switch (type) {
    case 'object':
    case 'native':
      return name.startsWith('system / ') ? `(${name})` : name || '(anonymous object)';
    case 'closure':
      return '(closure)';
    case 'string':
    case 'concatenated string':
    case 'sliced string':
      return '(string)';
    case 'code':
      return '(compiled code)';
    case 'array':
      return `(array) ${name.replace(/\d+/g, '#')}`;
    case 'hidden':
      return `(system) ${name.replace(/\d+/g, '#')}`;
    case 'object shape':
      return '(object shape)';
    case 'number':
      return '(heap number)';
    default:
      return `(${type})`;
  }
}

export interface ClassStat {
  count: number;
  self: number;
}

export interface Summary {
  nodes: number;
  totalSelf: number;
  byClass: Map<string, ClassStat>;
  /** Closures by function name (what DevTools lists under "(closure)"). */
  closures: Map<string, ClassStat>;
}

function add(m: Map<string, ClassStat>, k: string, size: number, count = 1): void {
  const s = m.get(k);
  if (s) {
    s.count += count;
    s.self += size;
  } else m.set(k, { count, self: size });
}

export function summary(g: HeapGraph, only?: (n: number) => boolean): Summary {
  const byClass = new Map<string, ClassStat>();
  const closures = new Map<string, ClassStat>();
  let totalSelf = 0;
  let nodes = 0;
  const closureType = g.nodeTypes.indexOf('closure');
  for (let n = 0; n < g.nodeCount; n++) {
    if (only && !only(n)) continue;
    const size = g.selfSize[n]!;
    nodes++;
    totalSelf += size;
    add(byClass, nodeClass(g, n), size);
    if (g.nodeType[n] === closureType) add(closures, g.strings[g.nodeName[n]!] || '(anonymous)', size);
  }
  return { nodes, totalSelf, byClass, closures };
}

export interface ClassDelta {
  name: string;
  countPer: number;
  selfPer: number;
}

/** (after - before) / per, largest self size first. */
export function diffSummaries(
  before: Map<string, ClassStat>,
  after: Map<string, ClassStat>,
  per: number,
  top = 30,
): ClassDelta[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  const out: ClassDelta[] = [];
  for (const k of keys) {
    const b = before.get(k) ?? { count: 0, self: 0 };
    const a = after.get(k) ?? { count: 0, self: 0 };
    out.push({ name: k, countPer: (a.count - b.count) / per, selfPer: (a.self - b.self) / per });
  }
  return out.sort((x, y) => y.selfPer - x.selfPer).slice(0, top);
}

export interface Dominators {
  /** Immediate dominator per node (node index), -1 when unreachable; the root dominates itself. */
  idom: Int32Array;
  retained: Float64Array;
  /** Dominator tree children in CSR form. */
  childStart: Uint32Array;
  children: Uint32Array;
}

/** Dominator tree and retained sizes from the synthetic root (node 0); weak edges do not retain. */
export function dominators(g: HeapGraph): Dominators {
  const N = g.nodeCount;
  const weak = g.edgeTypes.indexOf('weak');
  // Iterative DFS post-order.
  const post = new Int32Array(N).fill(-1);
  const byPost = new Uint32Array(N);
  const visited = new Uint8Array(N);
  const stackNode = new Uint32Array(N);
  const stackEdge = new Uint32Array(N);
  let sp = 0;
  let order = 0;
  stackNode[0] = 0;
  stackEdge[0] = g.firstEdge[0]!;
  visited[0] = 1;
  sp = 1;
  while (sp > 0) {
    const n = stackNode[sp - 1]!;
    const ei = stackEdge[sp - 1]!;
    if (ei < g.firstEdge[n + 1]!) {
      stackEdge[sp - 1] = ei + 1;
      if (g.edgeType[ei] === weak) continue;
      const to = g.edgeTo[ei]!;
      if (visited[to]) continue;
      visited[to] = 1;
      stackNode[sp] = to;
      stackEdge[sp] = g.firstEdge[to]!;
      sp++;
    } else {
      post[n] = order;
      byPost[order++] = n;
      sp--;
    }
  }
  const reached = order;
  // Predecessors (in post-order indices), reached nodes and strong edges only.
  const predCount = new Uint32Array(reached + 1);
  for (let n = 0; n < N; n++) {
    if (post[n]! < 0) continue;
    for (let ei = g.firstEdge[n]!; ei < g.firstEdge[n + 1]!; ei++) {
      if (g.edgeType[ei] === weak) continue;
      const t = post[g.edgeTo[ei]!]!;
      if (t >= 0) predCount[t + 1]!++;
    }
  }
  for (let i = 0; i < reached; i++) predCount[i + 1]! += predCount[i]!;
  const preds = new Uint32Array(predCount[reached]!);
  const fill = predCount.slice(0, reached);
  for (let n = 0; n < N; n++) {
    const pn = post[n]!;
    if (pn < 0) continue;
    for (let ei = g.firstEdge[n]!; ei < g.firstEdge[n + 1]!; ei++) {
      if (g.edgeType[ei] === weak) continue;
      const t = post[g.edgeTo[ei]!]!;
      if (t >= 0) preds[fill[t]!++] = pn;
    }
  }
  const root = reached - 1; // the root finishes last
  const dom = new Int32Array(reached).fill(-1);
  dom[root] = root;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (a < b) a = dom[a]!;
      while (b < a) b = dom[b]!;
    }
    return a;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (let p = root - 1; p >= 0; p--) {
      let nd = -1;
      for (let k = predCount[p]!; k < predCount[p + 1]!; k++) {
        const q = preds[k]!;
        if (dom[q] === -1) continue;
        nd = nd === -1 ? q : intersect(q, nd);
      }
      if (nd !== -1 && dom[p] !== nd) {
        dom[p] = nd;
        changed = true;
      }
    }
  }
  const idom = new Int32Array(N).fill(-1);
  const retained = new Float64Array(N);
  for (let p = 0; p < reached; p++) {
    const n = byPost[p]!;
    idom[n] = dom[p]! >= 0 ? byPost[dom[p]!]! : -1;
    retained[n] = g.selfSize[n]!;
  }
  for (let p = 0; p < root; p++) {
    if (dom[p]! < 0) continue;
    retained[byPost[dom[p]!]!]! += retained[byPost[p]!]!;
  }
  const childStart = new Uint32Array(N + 1);
  for (let n = 0; n < N; n++) if (idom[n]! >= 0 && n !== 0) childStart[idom[n]! + 1]!++;
  for (let n = 0; n < N; n++) childStart[n + 1]! += childStart[n]!;
  const children = new Uint32Array(childStart[N]!);
  const cf = childStart.slice(0, N);
  for (let n = 0; n < N; n++) if (idom[n]! >= 0 && n !== 0) children[cf[idom[n]!]!++] = n;
  return { idom, retained, childStart, children };
}

function edgeLabel(g: HeapGraph, ei: number): string {
  const t = g.edgeTypes[g.edgeType[ei]!];
  const v = g.edgeName[ei]!;
  if (t === 'element' || t === 'hidden') return `[${v}]`;
  const s = g.strings[v] ?? '?';
  return t === 'context' ? `(ctx) ${s}` : t === 'internal' ? `(int) ${s}` : s;
}

/** The first edge from `from` to `to`, or -1. */
function edgeBetween(g: HeapGraph, from: number, to: number): number {
  for (let ei = g.firstEdge[from]!; ei < g.firstEdge[from + 1]!; ei++) if (g.edgeTo[ei] === to) return ei;
  return -1;
}

function propertyTarget(g: HeapGraph, from: number, name: string): number {
  for (let ei = g.firstEdge[from]!; ei < g.firstEdge[from + 1]!; ei++) {
    const t = g.edgeTypes[g.edgeType[ei]!];
    if ((t === 'property' || t === 'internal') && g.strings[g.edgeName[ei]!] === name) return g.edgeTo[ei]!;
  }
  return -1;
}

export interface TreeLine {
  depth: number;
  label: string;
  retained: number;
  self: number;
}

export interface WorkflowBreakdown {
  workflows: number;
  rootClass: string;
  retainedAvg: number;
  retainedMedian: number;
  retainedMin: number;
  retainedMax: number;
  /** Self sizes of everything the workflows dominate, per workflow, by class. */
  byClass: ClassDelta[];
  closures: ClassDelta[];
  /** Webpack modules evaluated per workflow: what each claims per workflow (see the code), by module id and by package. */
  modules: Array<{ id: string; retainedPer: number }>;
  /** How many workflows (near the median) the module attribution looked at. */
  moduleSample: number;
  packages: Array<{ name: string; modules: number; retainedPer: number }>;
  moduleCacheRetainedAvg: number;
  /** The dominator tree of the median workflow, down to a few levels. */
  tree: TreeLine[];
}

function packageOf(moduleId: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(moduleId);
  if (m) return m[1]!;
  return moduleId.startsWith('./') ? `app: ${moduleId.replace(/^\.\//, '')}` : moduleId;
}

/** What the cached workflows in one snapshot are made of (see the file comment). */
export function workflowBreakdown(
  g: HeapGraph,
  d: Dominators,
  opts: { top?: number; depth?: number } = {},
): WorkflowBreakdown | undefined {
  const top = opts.top ?? 30;
  const objectType = g.nodeTypes.indexOf('object');
  let roots: number[] = [];
  let rootClass = '';
  for (const cls of ['ReusableVMWorkflow', 'VMWorkflow']) {
    roots = [];
    for (let n = 0; n < g.nodeCount; n++)
      if (g.nodeType[n] === objectType && g.strings[g.nodeName[n]!] === cls && d.idom[n]! >= 0) roots.push(n);
    if (roots.length > 0) {
      rootClass = cls;
      break;
    }
  }
  if (roots.length === 0) return undefined;
  const W = roots.length;
  // Everything a workflow root dominates.
  const owned = new Uint8Array(g.nodeCount);
  const stack: number[] = [];
  for (const r of roots) {
    stack.push(r);
    while (stack.length > 0) {
      const n = stack.pop()!;
      owned[n] = 1;
      for (let k = d.childStart[n]!; k < d.childStart[n + 1]!; k++) stack.push(d.children[k]!);
    }
  }
  const s = summary(g, (n) => owned[n] === 1);
  const empty = new Map<string, ClassStat>();
  const byClass = diffSummaries(empty, s.byClass, W, top);
  const closures = diffSummaries(empty, s.closures, W, 15);

  // Per-workflow module cache: Activator.moduleCache, a Map of module id -> { exports }. Each
  // module claims the objects of its workflow it reaches over strong edges that no module
  // claimed before it, the modules taken in the order of how much they reach (see below).
  // What no module reaches is the workflow's run state and the SDK's per-workflow objects.
  const stringTypes = new Set(['string', 'concatenated string', 'sliced string'].map((t) => g.nodeTypes.indexOf(t)));
  const weak = g.edgeTypes.indexOf('weak');
  const owner = new Int32Array(g.nodeCount).fill(-1);
  roots.forEach((r, k) => {
    stack.push(r);
    while (stack.length > 0) {
      const n = stack.pop()!;
      owner[n] = k;
      for (let c = d.childStart[n]!; c < d.childStart[n + 1]!; c++) stack.push(d.children[c]!);
    }
  });
  const sample = roots
    .map((r, k) => ({ r, k }))
    .sort((a, b) => d.retained[a.r]! - d.retained[b.r]!)
    .slice(Math.floor(W / 4), Math.max(Math.floor(W / 4) + 1, Math.floor((3 * W) / 4)))
    .slice(0, 10);
  const modules = new Map<string, number>();
  let moduleCacheRetained = 0;
  let unclaimed = 0;
  const claimed = new Uint8Array(g.nodeCount);
  for (const { r, k } of sample) {
    const activator = propertyTarget(g, r, 'activator');
    const cache = activator >= 0 ? propertyTarget(g, activator, 'moduleCache') : -1;
    const table = cache >= 0 ? propertyTarget(g, cache, 'table') : -1;
    const entries: Array<{ id: string; record: number }> = [];
    if (table >= 0) {
      moduleCacheRetained += d.retained[cache]!;
      let key: string | undefined;
      for (let ei = g.firstEdge[table]!; ei < g.firstEdge[table + 1]!; ei++) {
        const to = g.edgeTo[ei]!;
        if (stringTypes.has(g.nodeType[to]!)) key = g.strings[g.nodeName[to]!];
        else if (key !== undefined && g.nodeType[to] === objectType) {
          entries.push({ id: key, record: to });
          key = undefined;
        }
      }
    }
    // A module that imports another reaches what that one reaches and more: claiming in the
    // order of how much each reaches puts a module's own objects with it, not with its importers.
    const reach = (record: number, claim: boolean): number => {
      let size = 0;
      const seen = new Set<number>();
      const queue = [record];
      while (queue.length > 0) {
        const n = queue.pop()!;
        if (claimed[n] || owner[n] !== k || seen.has(n)) continue;
        seen.add(n);
        if (claim) claimed[n] = 1;
        size += g.selfSize[n]!;
        for (let ei = g.firstEdge[n]!; ei < g.firstEdge[n + 1]!; ei++)
          if (g.edgeType[ei] !== weak) queue.push(g.edgeTo[ei]!);
      }
      return size;
    };
    const ordered = entries.map((e) => ({ ...e, reach: reach(e.record, false) })).sort((a, b) => a.reach - b.reach);
    for (const { id, record } of ordered) modules.set(id, (modules.get(id) ?? 0) + reach(record, true));
    unclaimed += d.retained[r]!;
  }
  let claimedTotal = 0;
  for (const v of modules.values()) claimedTotal += v;
  unclaimed -= claimedTotal;
  const S = Math.max(1, sample.length);
  const moduleList = [...modules]
    .map(([id, v]) => ({ id: id.replace(/^(\.\.\/)+.*?node_modules\//, 'node_modules/'), retainedPer: v / S }))
    .sort((a, b) => b.retainedPer - a.retainedPer);
  const pk = new Map<string, { modules: number; retainedPer: number }>();
  for (const m of moduleList) {
    const name = packageOf(m.id);
    const p = pk.get(name) ?? { modules: 0, retainedPer: 0 };
    p.modules++;
    p.retainedPer += m.retainedPer;
    pk.set(name, p);
  }
  pk.set('(no module: the run state and the SDK per-workflow objects)', { modules: 0, retainedPer: unclaimed / S });

  const sizes = roots.map((r) => d.retained[r]!).sort((a, b) => a - b);
  const median = roots.slice().sort((a, b) => d.retained[a]! - d.retained[b]!)[Math.floor(W / 2)]!;
  const tree: TreeLine[] = [];
  const maxDepth = opts.depth ?? 5;
  const threshold = d.retained[median]! * 0.02;
  const walk = (n: number, depth: number, label: string): void => {
    tree.push({ depth, label, retained: d.retained[n]!, self: g.selfSize[n]! });
    if (depth >= maxDepth) return;
    const kids: number[] = [];
    for (let k = d.childStart[n]!; k < d.childStart[n + 1]!; k++) kids.push(d.children[k]!);
    kids.sort((a, b) => d.retained[b]! - d.retained[a]!);
    let rest = 0;
    let restCount = 0;
    const restBy = new Map<string, ClassStat>();
    for (const c of kids) {
      if (d.retained[c]! < threshold || tree.length > 120) {
        rest += d.retained[c]!;
        restCount++;
        add(restBy, nodeClass(g, c), d.retained[c]!);
        continue;
      }
      const ei = edgeBetween(g, n, c);
      const name = g.strings[g.nodeName[c]!] ?? '';
      const cls = nodeClass(g, c);
      const shown =
        cls === '(closure)'
          ? `closure ${name || '(anonymous)'}`
          : cls === name || !name
            ? cls
            : `${cls} ${JSON.stringify(name.slice(0, 60))}`;
      walk(c, depth + 1, `${ei >= 0 ? edgeLabel(g, ei) : '(indirect)'}: ${shown}`);
    }
    if (restCount > 0) {
      const what = [...restBy]
        .sort((a, b) => b[1].self - a[1].self)
        .slice(0, 4)
        .map(([k, v]) => `${v.count} ${k} ${(v.self / 1024).toFixed(0)} KB`)
        .join(', ');
      tree.push({ depth: depth + 1, label: `(${restCount} smaller: ${what})`, retained: rest, self: 0 });
    }
  };
  walk(median, 0, rootClass);
  return {
    workflows: W,
    rootClass,
    retainedAvg: sizes.reduce((a, b) => a + b, 0) / W,
    retainedMedian: sizes[Math.floor(W / 2)]!,
    retainedMin: sizes[0]!,
    retainedMax: sizes[W - 1]!,
    byClass,
    closures,
    modules: moduleList.slice(0, top),
    moduleSample: sample.length,
    packages: [...pk].map(([name, v]) => ({ name, ...v })).sort((a, b) => b.retainedPer - a.retainedPer),
    moduleCacheRetainedAvg: moduleCacheRetained / S,
    tree,
  };
}

export interface SnapshotComparison {
  per: number;
  before: { nodes: number; totalSelf: number };
  after: { nodes: number; totalSelf: number };
  /** (after - before) per workflow, by class. */
  diff: ClassDelta[];
  closuresDiff: ClassDelta[];
  breakdown: WorkflowBreakdown | undefined;
}

/** Compare a snapshot with 0 cached workflows to one with `per` more cached, and break the latter down. */
export function compareSnapshots(beforeFile: string, afterFile: string, per: number): SnapshotComparison {
  const gb = readHeapSnapshot(beforeFile);
  const sb = summary(gb);
  const gbSize = { nodes: sb.nodes, totalSelf: sb.totalSelf };
  const ga = readHeapSnapshot(afterFile);
  const sa = summary(ga);
  const d = dominators(ga);
  return {
    per,
    before: gbSize,
    after: { nodes: sa.nodes, totalSelf: sa.totalSelf },
    diff: diffSummaries(sb.byClass, sa.byClass, per),
    closuresDiff: diffSummaries(sb.closures, sa.closures, per, 15),
    breakdown: workflowBreakdown(ga, d),
  };
}
