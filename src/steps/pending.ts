import { NotAvailableYet } from '../errors.js';
import type { StepDefinition } from './types.js';

type Operations = Pick<StepDefinition, 'available' | 'plan' | 'ensure' | 'verify' | 'teardown'>;

/**
 * Operations for a step whose implementation has not landed: each one fails with a clear
 * "not available yet" error (exit 1), never a pretended success.
 */
export function pendingOperations(label: string): Operations {
  const fail = (operation: string) => () =>
    Promise.reject(new NotAvailableYet(`${operation} of ${label}`));
  return {
    available: false,
    plan: fail('Planning'),
    ensure: fail('Running'),
    verify: fail('Verifying'),
    teardown: fail('Tearing down'),
  };
}
