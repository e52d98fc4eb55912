// Preload (`node --require`) for the benches: at exit, appends "PID USER_US SYSTEM_US" (this
// process's whole CPU time, from process.resourceUsage) to the file $BENCH_CPU_FILE. Plain
// JavaScript and no imports, so it costs what it measures as little as can be; CommonJS and
// --require, not --import, which would load Node's ES module loader into a CommonJS command
// (`baton reload` from dist/) and count its start as the command's.
const file = process.env.BENCH_CPU_FILE;
if (file) {
  process.on('exit', () => {
    const r = process.resourceUsage();
    process.getBuiltinModule('node:fs').appendFileSync(file, `${process.pid} ${r.userCPUTime} ${r.systemCPUTime}\n`);
  });
}
