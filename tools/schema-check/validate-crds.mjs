// Validate monitoring CRD manifests (ServiceMonitor, PodMonitor, PrometheusRule)
// with the kubernetes-models validators. Usage: node validate-crds.mjs FILE...
// Prints one line per object; exits 1 on any failure or when nothing was checked.
import fs from "node:fs";
import YAML from "yaml";
import { ServiceMonitor, PodMonitor, PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const kinds = { ServiceMonitor, PodMonitor, PrometheusRule };
let failed = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
    const obj = doc.toJS();
    if (!obj || !kinds[obj.kind]) continue;
    try {
      new kinds[obj.kind](obj).validate();
      checked += 1;
      console.log(`ok ${file} ${obj.kind}/${obj.metadata.name}`);
    } catch (err) {
      failed += 1;
      console.log(`FAIL ${file} ${obj.kind}: ${String(err.message).split("\n")[0]}`);
    }
  }
}
if (checked === 0 && failed === 0) {
  console.log("no monitoring CRDs found");
  process.exit(1);
}
process.exit(failed ? 1 : 0);
