// ONNX Runtime timing for models with several or non-float inputs (BERT's
// int64 ids and mask), next to tools/ort/run.js (one float input):
//   node bench/ort_named.js MODEL.onnx --input NAME=FILE:TYPE:d0,d1,... [...]
//        [--threads N] [--repeat N] [--output Y.bin] [--lockstep]
// TYPE is float32 or int64. Prints {"median_ms", "min_ms", "threads"} after
// one warm-up run; --output writes the first output (float32). --lockstep
// (bench/paired.py): after the warm-up print "ready"; then for each line
// "N [W]" read on stdin run W untimed and N timed runs back to back and print
// the timed runs' median milliseconds, until end of input (as `occ run
// --lockstep`).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, '..', 'tools', 'ort', 'node_modules', 'onnxruntime-node'));
async function main() {
  const a = process.argv.slice(2);
  const model = a[0];
  let threads = 1, repeat = 10, output = null, lockstep = false;
  const feeds = {};
  for (let i = 1; i < a.length; i++) {
    if (a[i] === '--threads') threads = Number(a[++i]);
    else if (a[i] === '--repeat') repeat = Number(a[++i]);
    else if (a[i] === '--output') output = a[++i];
    else if (a[i] === '--lockstep') lockstep = true;
    else if (a[i] === '--input') {
      const [name, rest] = a[++i].split('=');
      const [file, type, dims] = rest.split(':');
      const shape = dims.split(',').map(Number);
      const buf = fs.readFileSync(file);
      const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
      const data = type === 'int64' ? new BigInt64Array(ab) : new Float32Array(ab);
      feeds[name] = new ort.Tensor(type, data, shape);
    } else throw new Error('unknown argument ' + a[i]);
  }
  const s = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all'});
  let r = await s.run(feeds);
  if (lockstep) {
    process.stdout.write('ready\n');
    const rl = require('readline').createInterface({input: process.stdin});
    for await (const line of rl) {
      const f = line.trim().split(/\s+/);
      const n = Math.min(64, Math.max(1, parseInt(f[0], 10) || 1));
      const w = Math.min(64, Math.max(0, parseInt(f[1], 10) || 0));
      for (let i = 0; i < w; i++) r = await s.run(feeds); // untimed
      const t = [];
      for (let i = 0; i < n; i++) {
        const t0 = process.hrtime.bigint();
        r = await s.run(feeds);
        t.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      t.sort((x, y) => x - y);
      const med = n % 2 ? t[(n - 1) / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
      process.stdout.write(med.toFixed(4) + '\n');
    }
    return;
  }
  const times = [];
  for (let i = 0; i < repeat; i++) {
    const t = process.hrtime.bigint();
    r = await s.run(feeds);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((x, y) => x - y);
  const med = times.length % 2 ? times[(times.length - 1) / 2]
                               : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
  if (output) {
    const y = r[s.outputNames[0]].data;
    fs.writeFileSync(output, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  }
  process.stdout.write(JSON.stringify({median_ms: Math.round(med * 1000) / 1000,
    min_ms: Math.round(times[0] * 1000) / 1000, threads}) + '\n');
}
main().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(1); });
