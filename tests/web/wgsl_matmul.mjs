// Issue 19, point 2: what a matrix product costs on Chromium's SwiftShader, by hand-written WGSL
// variants of the register-block kernel (shared/src/model/cube_matmul.rs) timed in the browser on
// one shape: where the time goes (loads against arithmetic) and what sharing rows across
// subgroups and four depth steps per store buy. Each variant's result is checked on a few
// entries against a product computed in JS. BENCHMARKS.md, "Subgroups and four steps at a time"
// and "Four values a load".
//   [BLOCK=16x4] [REPS=10] node tests/web/wgsl_matmul.mjs URL [M K N]
// URL: any page of a local server (WebGPU needs http://127.0.0.1, not file://); BLOCK: the block,
// tm x tn (default 8x8; tm a multiple of 4); REPS: dispatches per timed submission (default 1),
// the time given per dispatch. BLOCKS, WIDE, SCALARS: see the variants below.
import { chromium } from 'playwright-core';

const url = process.argv[2];
const [M, K, N] = process.argv.length > 5 ? process.argv.slice(3, 6).map(Number) : [440, 384, 1536];
const [TM, TN] = (process.env.BLOCK || '8x8').split('x').map(Number);

// The loop body and stores of one variant. `load`: operands read from the buffers (else made up
// from the loop counter, to time the arithmetic alone); `lanes`: 1, or 4 units of a subgroup
// sharing the rows (SwiftShader's subgroups are 4 wide); `steps`: depth steps per store of a
// block entry; `op`: 'fma' or 'mad' (a * b + c); `wide`: '' (one value a load), 'b' (b's
// columns four a load, as vec4) or 'ab' (a's four depth steps too; K and N multiples of 4, and
// four steps per store); `scalars`: the block entries as separate variables, not an array.
function body({ load = true, lanes = 1, steps = 1, op = 'fma', tm = TM, tn = TN, wide = '', scalars = false }) {
  const [TM, TN] = [tm, tn];
  const acc = (i) => (scalars ? `acc${i}` : `acc[${i}]`);
  const L = scalars ? Array.from({ length: TM * TN }, (_, i) => `var acc${i}: f32 = 0.0;`) : [`var acc: array<f32, ${TM * TN}>;`];
  const wideA = wide === 'ab' && steps === 4;
  if (lanes === 1) {
    L.push('let r0 = (unit / bn) * TM; let c0 = (unit % bn) * TN; let lane = 0u;');
  } else {
    L.push(`let lane = unit % ${lanes}u; let grp = unit / ${lanes}u; let bq = (bn + ${lanes - 1}u) / ${lanes}u;`);
    L.push(`let r0 = (grp / bq) * TM; let c0 = ((grp % bq) * ${lanes}u + lane) * TN;`);
  }
  const rowsLoaded = TM / lanes;
  for (let q = 0; q < rowsLoaded; q++) L.push(`let ar${q} = min(r0 + ${q * lanes}u + lane, M - 1u) * K;`);
  for (let j = 0; j < TN; j++) L.push(`let bc${j} = min(c0 + ${j}u, N - 1u);`);
  const values = (k, u) => {
    const out = [];
    // In the main loop (`k` stepping by four) a vec4 gives a row's four steps.
    const quad = wideA && k !== 'k';
    if (quad && u === 0) for (let q = 0; q < rowsLoaded; q++) out.push(`let av${q} = a4[(ar${q} + ${k}) / 4u];`);
    for (let q = 0; q < rowsLoaded; q++) {
      const v = quad ? `av${q}[${u}]` : load ? `a[ar${q} + ${k}]` : `f32(${k}) * 0.001 + f32(ar${q})`;
      if (lanes === 1) out.push(`let a${u}_${q} = ${v};`);
      else {
        out.push(`let l${u}_${q} = ${v};`);
        for (let l = 0; l < lanes; l++) out.push(`let a${u}_${q * lanes + l} = subgroupBroadcast(l${u}_${q}, ${l}u);`);
      }
    }
    if (wide) {
      for (let q = 0; q < TN / 4; q++) {
        out.push(`let bv${u}_${q} = b4[((${k}) * N + bc0) / 4u + ${q}u];`);
        for (let r = 0; r < 4; r++) out.push(`let b${u}_${q * 4 + r} = bv${u}_${q}[${r}];`);
      }
      return out;
    }
    for (let j = 0; j < TN; j++) out.push(`let b${u}_${j} = ${load ? `b[(${k}) * N + bc${j}]` : `f32(${k}) * 0.002 + f32(bc${j})`};`);
    return out;
  };
  const update = (n) => {
    const out = [];
    for (let i = 0; i < TM; i++) {
      for (let j = 0; j < TN; j++) {
        let e = acc(i * TN + j);
        for (let u = 0; u < n; u++) e = op === 'fma' ? `fma(a${u}_${i}, b${u}_${j}, ${e})` : `(a${u}_${i} * b${u}_${j} + ${e})`;
        out.push(`${acc(i * TN + j)} = ${e};`);
      }
    }
    return out;
  };
  L.push(`let kmain = K - K % ${steps}u;`);
  L.push(`for (var k = 0u; k < kmain; k += ${steps}u) {`);
  for (let u = 0; u < steps; u++) L.push(...values(`k + ${u}u`, u));
  L.push(...update(steps), '}');
  L.push('for (var k = kmain; k < K; k++) {', ...values('k', 0), ...update(1), '}');
  for (let i = 0; i < TM; i++) {
    for (let j = 0; j < TN; j++) {
      L.push(`if (valid && r0 + ${i}u < M && c0 + ${j}u < N) { c[(r0 + ${i}u) * N + c0 + ${j}u] = ${acc(i * TN + j)}; }`);
    }
  }
  return L.join('\n  ');
}

// BLOCKS=8x8,16x8,…: only the kernel as it is now, once per block, each pass in turn (a
// side-by-side comparison of blocks in one browser); PASSES: how many (default 1 after a warm-up).
// With WIDE=1, each block one value a load, b four a load and a and b four a load; with
// SCALARS=1, each block with its entries in an array and as separate variables.
const blocks = process.env.BLOCKS ? process.env.BLOCKS.split(',').map((b) => b.split('x').map(Number)) : null;
const now = (tm, tn) => ({ lanes: 4, steps: 4, tm, tn });
const variants = blocks && process.env.WIDE ? blocks.flatMap(([tm, tn]) => [
  [`${tm} x ${tn}, one value a load`, now(tm, tn)],
  [`${tm} x ${tn}, b four a load`, { ...now(tm, tn), wide: 'b' }],
  [`${tm} x ${tn}, a and b four a load`, { ...now(tm, tn), wide: 'ab' }],
]) : blocks && process.env.SCALARS ? blocks.flatMap(([tm, tn]) => [
  [`${tm} x ${tn}, entries in an array`, now(tm, tn)],
  [`${tm} x ${tn}, entries as variables`, { ...now(tm, tn), scalars: true }],
]) : blocks ? blocks.map(([tm, tn]) => [`${tm} x ${tn}, subgroups, 4 steps per store`, now(tm, tn)]) : [
  ['one lane: tm + tn loads per step', {}],
  ['  arithmetic alone (no loads)', { load: false }],
  ['  a * b + c instead of fma', { op: 'mad' }],
  ['  4 steps per store', { steps: 4 }],
  ['subgroups of 4 share the rows', { lanes: 4 }],
  ['  and 4 steps per store (the kernel now)', { lanes: 4, steps: 4 }],
  ['  arithmetic alone (no loads)', { lanes: 4, steps: 4, load: false }],
];
const passes = Number(process.env.PASSES || 1);
const reps = Number(process.env.REPS || 1);

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--enable-unsafe-webgpu'] });
const page = await browser.newPage();
await page.goto(url);
const rows = await page.evaluate(async ([variants, M, K, N, TM, TN, passes, reps]) => {
  const adapter = await navigator.gpu.requestAdapter();
  const device = await adapter.requestDevice({ requiredFeatures: adapter.features.has('subgroups') ? ['subgroups'] : [] });
  const buffer = (n) => {
    const b = device.createBuffer({ size: 4 * n, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    const v = new Float32Array(n).map((_, i) => Math.sin(i * 0.37));
    device.queue.writeBuffer(b, 0, v);
    return [b, v];
  };
  const [A, av] = buffer(M * K), [B, bv] = buffer(K * N), [C] = buffer(M * N);
  const readback = device.createBuffer({ size: 4 * M * N, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const exact = (i, j) => { let s = 0; for (let k = 0; k < K; k++) s += av[i * K + k] * bv[k * N + j]; return s; };
  const out = [];
  // Two passes over the variants, the first a warm-up (SwiftShader's threads start with the first).
  for (let pass = 0; pass <= passes; pass++) for (const [name, v, code] of variants) {
    const wgsl = `${code.includes('subgroup') ? 'enable subgroups;' : ''}
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
${code.includes('b4[') ? '@group(0) @binding(3) var<storage, read> b4: array<vec4<f32>>;' : ''}
${code.includes('a4[') ? '@group(0) @binding(4) var<storage, read> a4: array<vec4<f32>>;' : ''}
const M = ${M}u; const K = ${K}u; const N = ${N}u; const TM = ${v.tm || TM}u; const TN = ${v.tn || TN}u;
@compute @workgroup_size(32) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let bn = (N + TN - 1u) / TN;
  let unit = g.x + g.y * nw.x * 32u;
  // No early return: subgroup operations need uniform control flow.
  let valid = unit < ((M + TM - 1u) / TM) * ((bn + ${(v.lanes || 1) - 1}u) / ${v.lanes || 1}u) * ${v.lanes || 1}u;
  ${code}
  if (unit == 0xffffffffu) { c[0] = a[0] + b[0]; }  // keeps every binding in the layout
}`;
    const compileStart = performance.now();
    const module = device.createShaderModule({ code: wgsl });
    const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
    if (errors.length) { if (pass) out.push([name, errors.map((m) => m.message).join('; ')]); continue; }
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [A, B, C, B, A].slice(0, code.includes('a4[') ? 5 : code.includes('b4[') ? 4 : 3).map((buffer, binding) => ({ binding, resource: { buffer } })) });
    const units = Math.ceil(M / (v.tm || TM)) * Math.ceil(Math.ceil(N / (v.tn || TN)) / (v.lanes || 1)) * (v.lanes || 1);
    const groups = Math.ceil(units / 32), gx = Math.min(groups, 65535), gy = Math.ceil(groups / gx);
    const run = async (n = 1) => {
      const e = device.createCommandEncoder(); const p = e.beginComputePass();
      p.setPipeline(pipeline); p.setBindGroup(0, group);
      for (let r = 0; r < n; r++) p.dispatchWorkgroups(gx, gy);
      p.end();
      device.queue.submit([e.finish()]); await device.queue.onSubmittedWorkDone();
    };
    await run();  // compiles
    const compileMs = performance.now() - compileStart;
    const e = device.createCommandEncoder(); e.copyBufferToBuffer(C, 0, readback, 0, 4 * M * N); device.queue.submit([e.finish()]);
    await readback.mapAsync(GPUMapMode.READ); const cv = new Float32Array(readback.getMappedRange().slice(0)); readback.unmap();
    let err = 0;
    for (const [i, j] of [[0, 0], [7, 13], [M - 1, N - 1], [M >> 1, N >> 1], [M - 2, N - 6]]) err = Math.max(err, Math.abs(cv[i * N + j] - exact(i, j)));
    const times = [];
    for (let i = 0; i < 5; i++) { const t = performance.now(); await run(reps); times.push((performance.now() - t) / reps); }
    times.sort((x, y) => x - y);
    if (pass) out.push([name, `${times[0].toFixed(1)} / ${times[2].toFixed(1)} ms`, v.load === false ? '(made-up operands)' : `max error ${err.toExponential(1)}`, `first run ${compileMs.toFixed(0)} ms`]);
  }
  return out;
}, [variants.map(([name, v]) => [name, v, body(v)]), M, K, N, TM, TN, passes, reps]);
console.log(`${M} x ${K} -> ${N}, ${TM} x ${TN} blocks, min / median of 5 runs:`);
for (const r of rows) console.log(r[0].padEnd(44), r.slice(1).join('  '));
await browser.close();
