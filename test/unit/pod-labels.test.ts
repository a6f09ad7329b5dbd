import { describe, expect, test } from 'vitest';
import { parseCommandLine, ConfigError } from '../../src/config.ts';
import {
  MAX_LABEL_VALUE_LENGTH,
  MAX_POD_LABELS,
  NO_LABELS,
  parseLabelsAllowlist,
  publishedPodLabels,
  sanitizeLabelName,
} from '../../src/translate/pod-labels.ts';
import { toBasePodRecord, type PodJson } from '../../src/translate/pod-records.ts';

const BASE_ARGS = ['--node.name=n1', '--kubelet.url=https://10.0.0.5:10250'];

describe('parseLabelsAllowlist (kube-state-metrics --metric-labels-allowlist, pods only)', () => {
  test('a comma list of keys, blanks ignored', () => {
    expect(parseLabelsAllowlist(' tenant, app.kubernetes.io/name ,,')).toEqual({
      all: false,
      keys: new Set(['tenant', 'app.kubernetes.io/name']),
    });
  });
  test('* allows every label, alone', () => {
    expect(parseLabelsAllowlist('*').all).toBe(true);
    expect(() => parseLabelsAllowlist('*,tenant')).toThrow(/no other key/);
  });
  test("KSM's own spelling pods=[...] is accepted; another resource is refused", () => {
    expect(parseLabelsAllowlist('pods=[tenant,repository]').keys).toEqual(new Set(['tenant', 'repository']));
    expect(parseLabelsAllowlist('pods=[*]').all).toBe(true);
    expect(() => parseLabelsAllowlist('namespaces=[team]')).toThrow(/only the pods resource/);
  });
  test('empty means nothing', () => {
    expect(parseLabelsAllowlist('')).toEqual({ all: false, keys: new Set() });
  });
  test('a key with characters no label key has is refused', () => {
    expect(() => parseLabelsAllowlist('ten ant')).toThrow(/not a label key/);
    expect(() => parseLabelsAllowlist('a"b')).toThrow(/not a label key/);
  });
  test('the flag: default none, a bad value is a ConfigError naming the flag', () => {
    const parsed = parseCommandLine(BASE_ARGS, {});
    expect(parsed.kind === 'run' && parsed.config.podLabelsAllowlist).toEqual({ all: false, keys: new Set() });
    const set = parseCommandLine([...BASE_ARGS, '--pods.labels-allowlist=tenant,step'], {});
    expect(set.kind === 'run' && [...set.config.podLabelsAllowlist.keys]).toEqual(['tenant', 'step']);
    expect(() => parseCommandLine([...BASE_ARGS, '--pods.labels-allowlist=a b'], {})).toThrow(ConfigError);
    expect(() => parseCommandLine([...BASE_ARGS, '--pods.labels-allowlist=a b'], {})).toThrow(/--pods.labels-allowlist/);
  });
});

describe('sanitizeLabelName (as KSM)', () => {
  test.each([
    ['tenant', 'tenant'],
    ['app.kubernetes.io/name', 'app_kubernetes_io_name'],
    ['ci-step', 'ci_step'],
    ['pipelineId', 'pipeline_id'],
    ['a1B', 'a1_b'],
  ])('%s → %s', (key, name) => {
    expect(sanitizeLabelName(key)).toBe(name);
  });
});

describe('publishedPodLabels', () => {
  const labels = { tenant: 'acme', repository: 'web', 'ci-step': 'test', other: 'x' };

  test('only the allowlisted keys, prefixed label_', () => {
    expect(publishedPodLabels(labels, parseLabelsAllowlist('tenant,ci-step,absent'))).toEqual({
      label_tenant: 'acme',
      label_ci_step: 'test',
    });
  });
  test('nothing by default', () => {
    expect(publishedPodLabels(labels, NO_LABELS)).toEqual({});
  });
  test('keys that sanitise to one name get _conflictN in key order, none is lost', () => {
    const out = publishedPodLabels({ 'a.b': '1', 'a-b': '2', a_b: '3' }, parseLabelsAllowlist('*'));
    expect(out).toEqual({ label_a_b_conflict1: '2', label_a_b_conflict2: '1', label_a_b_conflict3: '3' });
  });
  test('a key that sanitises to a suffixed name already taken is dropped, never overwrites', () => {
    const out = publishedPodLabels({ 'a.b': '1', 'a-b': '2', a_b_conflict1: 'evil' }, parseLabelsAllowlist('*'));
    expect(out.label_a_b_conflict1).toBe('2');
    expect(Object.values(out)).not.toContain('evil');
  });
  test('bounded: at most MAX_POD_LABELS labels, values cut to MAX_LABEL_VALUE_LENGTH', () => {
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${String(i).padStart(2, '0')}`, 'v'.repeat(500)]));
    const out = publishedPodLabels(many, parseLabelsAllowlist('*'));
    expect(Object.keys(out)).toHaveLength(MAX_POD_LABELS);
    expect(Object.keys(out)[0]).toBe('label_k00');
    for (const value of Object.values(out)) expect(value).toHaveLength(MAX_LABEL_VALUE_LENGTH);
  });
  test('the pod record carries them; the audit still sees every label', () => {
    const pod: PodJson = { metadata: { uid: 'u1', name: 'p', namespace: 'ci', labels } };
    const record = toBasePodRecord(pod, parseLabelsAllowlist('tenant'));
    expect(record.publishedLabels).toEqual({ label_tenant: 'acme' });
    expect(record.labels).toEqual(labels);
    expect(toBasePodRecord(pod).publishedLabels).toBeUndefined();
  });
});
