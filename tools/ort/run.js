#!/usr/bin/env node
// ONNX Runtime (CPU) reference runner for Occlumency's checks and benchmarks.
//
//   node tools/ort/run.js MODEL.onnx --input X.bin --output Y.bin [--threads N]
//        [--repeat N] [--warmup N] [--shape 1,3,224,224]
//   node tools/ort/run.js MODEL.onnx --batch-input XS.bin --output YS.bin
//        [--predictions P.txt] [--threads N]
//
// Tensors are raw little-endian float32, NCHW, batch 1 (the model's first
// input and first output). --threads sets intraOpNumThreads (default 1);
// interOpNumThreads is always 1 and execution is sequential.
//
// Single mode: runs once and writes the output. With --repeat N it first runs
// --warmup times (default 1), then N timed runs, and prints one JSON object on
// stdout: {"median_ms", "mean_ms", "min_ms", "max_ms", "repeat", "threads",
// "load_ms", "peak_rss_kb"}. The output written is the one of the last run.
//
// Batch mode: XS.bin holds K input tensors back to back (K = file size /
// tensor size); each is run with batch 1 and the K outputs are written back
// to back to --output (if given). --predictions writes the argmax of each
// output, one per line. A JSON summary goes to stdout.
'use strict';

const fs = require('fs');
const path = require('path');

function usage(msg) {
  if (msg) process.stderr.write(`run.js: ${msg}\n`);
  process.stderr.write(
    'usage: node run.js MODEL.onnx (--input X.bin | --batch-input XS.bin) [--output Y.bin]\n' +
    '       [--threads N] [--repeat N] [--warmup N] [--shape d0,d1,...] [--predictions P.txt]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { threads: 1, repeat: 0, warmup: 1 };
  const valued = new Set(['--input', '--batch-input', '--output', '--threads', '--repeat',
                          '--warmup', '--shape', '--predictions']);
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '-h' || k === '--help') usage();
    if (valued.has(k)) {
      if (i + 1 >= argv.length) usage(`${k} needs a value`);
      const v = argv[++i];
      const key = k.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
      a[key] = v;
    } else if (k === '--json') {
      // accepted for symmetry with `occ run`; output is always JSON
    } else if (k.startsWith('-')) {
      usage(`unknown option ${k}`);
    } else if (!a.model) {
      a.model = k;
    } else {
      usage(`unexpected argument ${k}`);
    }
  }
  if (!a.model) usage('missing MODEL.onnx');
  if (!a.input && !a.batchInput) usage('need --input or --batch-input');
  if (a.input && a.batchInput) usage('--input and --batch-input are exclusive');
  for (const k of ['threads', 'repeat', 'warmup']) {
    const n = Number(a[k]);
    if (!Number.isInteger(n) || n < 0) usage(`--${k} must be a non-negative integer`);
    a[k] = n;
  }
  if (a.threads < 1) usage('--threads must be >= 1');
  return a;
}

function readF32(file) {
  const buf = fs.readFileSync(file);
  if (buf.length % 4 !== 0) throw new Error(`${file}: size ${buf.length} is not a multiple of 4`);
  const out = new Float32Array(buf.length / 4);
  // copy (the Buffer may not be 4-byte aligned); host is little-endian x86/arm
  Buffer.from(out.buffer).set(buf);
  return out;
}

function writeF32(file, arrays) {
  const fd = fs.openSync(file, 'w');
  try {
    for (const a of arrays) fs.writeSync(fd, Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  } finally {
    fs.closeSync(fd);
  }
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function inputShape(session, args) {
  if (args.shape) {
    const s = args.shape.split(',').map(Number);
    if (s.some((d) => !Number.isInteger(d) || d <= 0)) usage('bad --shape');
    return s;
  }
  const md = session.inputMetadata && session.inputMetadata[0];
  if (md && Array.isArray(md.shape) && md.shape.every((d) => Number.isInteger(d) && d > 0)) {
    return md.shape;
  }
  throw new Error('model input shape is not static; pass --shape');
}

const r3 = (x) => Math.round(x * 1000) / 1000;

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    throw new Error(`onnxruntime-node not installed in ${path.join(__dirname, 'node_modules')}: ` +
                    'run `bash scripts/install-deps.sh`');
  }
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(args.model, {
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const inName = session.inputNames[0];
  const outName = session.outputNames[0];
  const shape = inputShape(session, args);
  const n = shape.reduce((x, y) => x * y, 1);

  const run = async (data) => {
    const res = await session.run({ [inName]: new ort.Tensor('float32', data, shape) });
    return res[outName].data;
  };

  if (args.input) {
    const x = readF32(args.input);
    if (x.length !== n) {
      throw new Error(`${args.input}: ${x.length} floats, model input ${JSON.stringify(shape)} needs ${n}`);
    }
    let y;
    if (args.repeat > 0) {
      for (let i = 0; i < args.warmup; i++) y = await run(x);
      const times = [];
      for (let i = 0; i < args.repeat; i++) {
        const t = process.hrtime.bigint();
        y = await run(x);
        times.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      const stats = {
        median_ms: r3(median(times)),
        mean_ms: r3(times.reduce((p, q) => p + q, 0) / times.length),
        min_ms: r3(Math.min(...times)),
        max_ms: r3(Math.max(...times)),
        repeat: args.repeat,
        threads: args.threads,
        load_ms: r3(loadMs),
        peak_rss_kb: process.resourceUsage().maxRSS,
      };
      process.stdout.write(JSON.stringify(stats) + '\n');
    } else {
      y = await run(x);
    }
    if (args.output) writeF32(args.output, [y]);
    return;
  }

  // batch mode
  const xs = readF32(args.batchInput);
  if (xs.length % n !== 0) {
    throw new Error(`${args.batchInput}: ${xs.length} floats is not a multiple of ${n}`);
  }
  const k = xs.length / n;
  const outs = [];
  const preds = [];
  const t = process.hrtime.bigint();
  for (let i = 0; i < k; i++) {
    const y = await run(xs.slice(i * n, (i + 1) * n));
    preds.push(argmax(y));
    if (args.output) outs.push(Float32Array.from(y));
  }
  const totalMs = Number(process.hrtime.bigint() - t) / 1e6;
  if (args.output) writeF32(args.output, outs);
  if (args.predictions) fs.writeFileSync(args.predictions, preds.join('\n') + '\n');
  process.stdout.write(JSON.stringify({
    count: k, total_ms: r3(totalMs), per_item_ms: r3(totalMs / Math.max(k, 1)),
    threads: args.threads, peak_rss_kb: process.resourceUsage().maxRSS,
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`run.js: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
