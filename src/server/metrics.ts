/**
 * Prometheus metrics of the blindml service (prom-client), served at `GET /metrics`. Counts and
 * timings only: no metric carries a ciphertext, a key or a session id. A server given a replica
 * name (`ServerOptions.replicaName`) adds it as a `replica` label to every series.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BudgetKind, MemoryBudget } from './budget.js';

const BUDGET_KINDS: readonly BudgetKind[] = ['paillier-key', 'ckks-keys', 'ckks-session', 'ckks-prepared'];

/** The service's metrics on a registry of their own (several servers may share a process). */
export interface ServiceMetrics {
  readonly registry: Registry;
  /** scheme: paillier | ckks | ckks-poly */
  readonly sessionsActive: Gauge<'scheme'>;
  readonly sessionsOpened: Counter<'transport'>;
  /** outcome: completed | failed | aborted | expired */
  readonly sessionsEnded: Counter<'outcome'>;
  readonly rounds: Counter;
  readonly bytesReceived: Counter<'transport'>;
  readonly bytesSent: Counter<'transport'>;
  /** reason: oversized | malformed | rate_limited | session_limit | shutting_down */
  readonly framesRejected: Counter<'reason'>;
  readonly messageSeconds: Histogram<'type'>;
  readonly sessionSeconds: Histogram;
  readonly models: Gauge;
  readonly wsConnections: Gauge;
  /** kind: a {@link BudgetKind}; the bytes and entries the memory budget holds. */
  readonly budgetBytes: Gauge<'kind'>;
  readonly budgetEntries: Gauge<'kind'>;
}

/** Creates the metrics; `sessions()`, `models()` and the budget are read at scrape time. */
export function createMetrics(read: { sessions: () => Record<'paillier' | 'ckks' | 'ckks-poly', number>; models: () => number; budget: MemoryBudget }): ServiceMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'blindml_' });
  const registers = [registry];
  return {
    registry,
    sessionsActive: new Gauge({
      name: 'blindml_sessions_active',
      help: 'Inference sessions open now, by scheme',
      labelNames: ['scheme'],
      registers,
      collect() {
        for (const [scheme, n] of Object.entries(read.sessions())) this.set({ scheme }, n);
      },
    }),
    sessionsOpened: new Counter({ name: 'blindml_sessions_opened_total', help: 'Inference sessions opened', labelNames: ['transport'], registers }),
    sessionsEnded: new Counter({ name: 'blindml_sessions_ended_total', help: 'Inference sessions ended, by outcome', labelNames: ['outcome'], registers }),
    rounds: new Counter({ name: 'blindml_rounds_total', help: 'Client activation rounds completed', registers }),
    bytesReceived: new Counter({ name: 'blindml_bytes_received_total', help: 'Protocol bytes received', labelNames: ['transport'], registers }),
    bytesSent: new Counter({ name: 'blindml_bytes_sent_total', help: 'Protocol bytes sent', labelNames: ['transport'], registers }),
    framesRejected: new Counter({ name: 'blindml_frames_rejected_total', help: 'Protocol messages refused before or by the service', labelNames: ['reason'], registers }),
    messageSeconds: new Histogram({
      name: 'blindml_message_duration_seconds',
      help: 'Service time per protocol message, by message type',
      labelNames: ['type'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    sessionSeconds: new Histogram({
      name: 'blindml_session_duration_seconds',
      help: 'Wall time from open to result',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers,
    }),
    models: new Gauge({
      name: 'blindml_models',
      help: 'Registered models',
      registers,
      collect() {
        this.set(read.models());
      },
    }),
    wsConnections: new Gauge({ name: 'blindml_websocket_connections', help: 'Open WebSocket connections', registers }),
    budgetBytes: new Gauge({
      name: 'blindml_memory_budget_bytes',
      help: 'Bytes the per-client memory budget holds, by kind of structure',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const kind of BUDGET_KINDS) this.set({ kind }, read.budget.bytes(kind));
      },
    }),
    budgetEntries: new Gauge({
      name: 'blindml_memory_budget_entries',
      help: 'Per-client structures the memory budget holds, by kind',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const kind of BUDGET_KINDS) this.set({ kind }, read.budget.entries(kind));
      },
    }),
  };
}
