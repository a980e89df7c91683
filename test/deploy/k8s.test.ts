/**
 * Structural validation of deploy/k8s. Neither helm nor kubeconform installs from the registries
 * this project can reach (npm, Debian), and the `kubernetes-models` schema package is not
 * installed, so the checks are hand-written zod schemas of the fields this stack relies on: API
 * versions, selector/label agreement, probes on /healthz at a named container port, restricted
 * security context, secrets for keys, PDBs, Prometheus annotations. `kubectl kustomize` (offline)
 * renders the kustomization when kubectl is present.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { masaConfigSchema } from '../../masa/src/config.ts';
import { registrarConfigSchema } from '../../registrar/src/config.ts';

const DIR = join(import.meta.dirname, '../../deploy/k8s');

/** Kubernetes parses YAML 1.1 (sigs.k8s.io/yaml): `0440` is octal there. */
function docs(file: string): any[] {
  return parseAllDocuments(readFileSync(join(DIR, file), 'utf8'), { version: '1.1' }).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`);
    return d.toJS();
  }).filter(Boolean);
}

const labels = z.record(z.string(), z.string());
const meta = z.object({ name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/), labels: labels.optional(), annotations: labels.optional() }).passthrough();
const port = z.union([z.number().int().min(1).max(65535), z.string().regex(/^[a-z][-a-z0-9]{0,14}$/)]);
const httpProbe = z.object({ httpGet: z.object({ path: z.literal('/healthz'), port, scheme: z.literal('HTTPS') }).strict() }).passthrough();
const containerSecurity = z.object({
  allowPrivilegeEscalation: z.literal(false),
  readOnlyRootFilesystem: z.literal(true),
  capabilities: z.object({ drop: z.array(z.literal('ALL')).min(1) }).strict(),
}).passthrough();
const container = z.object({
  name: z.string(),
  image: z.string(),
  ports: z.array(z.object({ name: z.string().max(15), containerPort: z.number().int() }).passthrough()).min(1),
  startupProbe: httpProbe,
  readinessProbe: httpProbe,
  livenessProbe: httpProbe,
  resources: z.object({ requests: z.object({ cpu: z.string(), memory: z.string() }), limits: z.object({ memory: z.string() }).passthrough() }).passthrough(),
  securityContext: containerSecurity,
  volumeMounts: z.array(z.object({ name: z.string(), mountPath: z.string().startsWith('/') }).passthrough()),
}).passthrough();
const serviceDeployment = z.object({
  apiVersion: z.literal('apps/v1'), kind: z.literal('Deployment'), metadata: meta,
  spec: z.object({
    replicas: z.number().int().min(2),
    selector: z.object({ matchLabels: labels }).strict(),
    template: z.object({
      metadata: z.object({
        labels,
        annotations: z.object({
          'prometheus.io/scrape': z.literal('true'), 'prometheus.io/scheme': z.literal('https'),
          'prometheus.io/port': z.string().regex(/^\d+$/), 'prometheus.io/path': z.literal('/metrics'),
        }).passthrough(),
      }),
      spec: z.object({
        automountServiceAccountToken: z.literal(false),
        securityContext: z.object({ runAsNonRoot: z.literal(true), runAsUser: z.number().int().min(1), seccompProfile: z.object({ type: z.literal('RuntimeDefault') }) }).passthrough(),
        containers: z.array(container).length(1),
        volumes: z.array(z.object({ name: z.string() }).passthrough()),
      }).passthrough(),
    }),
  }).passthrough(),
}).passthrough();
const pdb = z.object({
  apiVersion: z.literal('policy/v1'), kind: z.literal('PodDisruptionBudget'), metadata: meta,
  spec: z.object({ selector: z.object({ matchLabels: labels }).strict() }).passthrough()
    .refine((s: any) => (s.minAvailable === undefined) !== (s.maxUnavailable === undefined), 'exactly one of minAvailable / maxUnavailable'),
}).passthrough();
const service = z.object({
  apiVersion: z.literal('v1'), kind: z.literal('Service'), metadata: meta,
  spec: z.object({ selector: labels, ports: z.array(z.object({ name: z.string(), port: z.number().int(), targetPort: port }).passthrough()).min(1) }).passthrough(),
}).passthrough();

const matches = (selector: Record<string, string>, l: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => l[k] === v);

function checkService(file: string, configKey: string, schema: { safeParse(v: unknown): { success: boolean; error?: unknown } }): void {
  const all = docs(file);
  const dep = serviceDeployment.parse(all.find((d) => d.kind === 'Deployment')) as any;
  const podLabels = dep.spec.template.metadata.labels;
  expect(matches(dep.spec.selector.matchLabels, podLabels), 'Deployment selector matches its pod labels').toBe(true);

  const c = dep.spec.template.spec.containers[0];
  const portNames = new Set<string>(c.ports.map((p: any) => p.name));
  for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) expect(portNames.has(probe.httpGet.port)).toBe(true);
  const scrapePort = Number(dep.spec.template.metadata.annotations['prometheus.io/port']);
  expect(c.ports.some((p: any) => p.containerPort === scrapePort), 'scrape port is a container port').toBe(true);

  // Every volume mount names a volume; keys come from a Secret, never a ConfigMap.
  const volumes = new Map<string, any>(dep.spec.template.spec.volumes.map((v: any) => [v.name, v]));
  for (const m of c.volumeMounts) expect(volumes.has(m.name), `volume ${m.name}`).toBe(true);
  const secretsMount = c.volumeMounts.find((m: any) => m.mountPath === '/run/secrets');
  expect(volumes.get(secretsMount.name).secret?.secretName).toMatch(/^brski-.*-keys$/);
  expect(volumes.get(secretsMount.name).secret.defaultMode & 0o007, 'keys not world-readable').toBe(0);

  // The embedded service config passes the service's own schema (paths are not read by zod).
  const cm = all.find((d) => d.kind === 'ConfigMap');
  const cfg = parseAllDocuments(cm.data[configKey])[0]!.toJS();
  cfg.admin.token = 'x'.repeat(32); delete cfg.admin.token_file; // token_file is read by the loader, not the schema
  const parsed = schema.safeParse(cfg);
  expect(parsed.success, JSON.stringify(parsed.error)).toBe(true);
  for (const f of JSON.stringify(cfg).match(/"\/(etc\/brski\/pki|run\/secrets)\/[^"]+"/g) ?? []) {
    const path = JSON.parse(f) as string;
    const isKey = /\.(key|token)$/.test(path);
    expect(path.startsWith(isKey ? '/run/secrets/' : '/etc/brski/pki/'), `${path}: keys under /run/secrets, certificates under /etc/brski/pki`).toBe(true);
  }

  const budget = pdb.parse(all.find((d) => d.kind === 'PodDisruptionBudget')) as any;
  expect(matches(budget.spec.selector.matchLabels, podLabels), 'PDB selects the pods').toBe(true);
  const svcs = all.filter((d) => d.kind === 'Service').map((s) => service.parse(s) as any);
  expect(svcs.length).toBeGreaterThan(0);
  for (const s of svcs) {
    expect(matches(s.spec.selector, podLabels), `${s.metadata.name} selects the pods`).toBe(true);
    for (const p of s.spec.ports) expect(portNames.has(p.targetPort), `${s.metadata.name} → ${p.targetPort}`).toBe(true);
  }
}

describe('deploy/k8s manifests', () => {
  it('MASA: Deployment, Services, PDB, config valid for masaConfigSchema', () => {
    checkService('masa.yaml', 'masa.yaml', masaConfigSchema);
  });

  it('registrar: Deployment, Services, PDB, config valid for registrarConfigSchema', () => {
    checkService('registrar.yaml', 'registrar.yaml', registrarConfigSchema);
  });

  it('Redis keeps an append-only file on a persistent volume', () => {
    const all = docs('redis.yaml');
    const conf = all.find((d) => d.kind === 'ConfigMap').data['redis.conf'] as string;
    expect(conf).toMatch(/^appendonly yes$/m);
    expect(conf).toMatch(/^maxmemory-policy noeviction$/m);
    const sts = all.find((d) => d.kind === 'StatefulSet');
    expect(sts.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    expect(sts.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
  });

  it('the schema checks refuse a broken manifest (probe path, root user, selector)', () => {
    const dep = docs('masa.yaml').find((d) => d.kind === 'Deployment');
    const broken = structuredClone(dep);
    broken.spec.template.spec.containers[0].readinessProbe.httpGet.path = '/';
    expect(serviceDeployment.safeParse(broken).success).toBe(false);
    const root = structuredClone(dep);
    root.spec.template.spec.securityContext.runAsNonRoot = false;
    expect(serviceDeployment.safeParse(root).success).toBe(false);
    const pdbDoc = docs('masa.yaml').find((d) => d.kind === 'PodDisruptionBudget');
    expect(pdb.safeParse({ ...pdbDoc, spec: { ...pdbDoc.spec, maxUnavailable: 1 } }).success).toBe(false);
  });

  const kubectl = (() => { try { execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' }); return true; } catch { return false; } })();
  it.skipIf(!kubectl)('renders with `kubectl kustomize` (offline)', () => {
    const out = execFileSync('kubectl', ['kustomize', DIR], { encoding: 'utf8' });
    const rendered = parseAllDocuments(out, { version: '1.1' }).map((d) => d.toJS());
    const kinds = rendered.map((d) => `${d.kind}/${d.metadata.name}`).sort();
    expect(kinds).toEqual(expect.arrayContaining(['Deployment/brski-masa', 'Deployment/brski-registrar', 'PodDisruptionBudget/brski-masa',
      'PodDisruptionBudget/brski-registrar', 'StatefulSet/brski-redis', 'Namespace/brski']));
    for (const d of rendered.filter((x) => x.kind !== 'Namespace')) expect(d.metadata.namespace).toBe('brski');
  });
});
