// A HelperService whose rules methods are the helper's real ones
// (helper/daemon/service.ts over a real RuleStore and ImportStaging) and whose
// other methods are the FakeHelperService's: for tests of the rules paths
// (import, export) through a real IpcServer without a whole daemon.
import { ImportStaging } from '../../helper/daemon/import-staging.js';
import { createHelperService, type ServiceParts } from '../../helper/daemon/service.js';
import type { RuleStore } from '../../helper/decisions/index.js';
import type { HelperService } from '../../helper/server/service.js';
import { FakeHelperService } from './fake-helper-service.js';

const RULE_METHODS = [
  'rules.list',
  'rules.add',
  'rules.update',
  'rules.remove',
  'rules.setEnabled',
  'rules.import',
  'rules.importBegin',
  'rules.importPage',
  'rules.importCommit',
  'rules.importAbort',
  'rules.export',
  'clientClosed',
] as const;

export function realRulesService(
  rules: RuleStore,
  staging = new ImportStaging(),
): { service: HelperService; staging: ImportStaging } {
  // The rules methods use only `rules` and the staging.
  const unused = {} as never;
  const parts: ServiceParts = {
    interception: unused,
    broker: unused,
    history: unused,
    settingsFile: unused,
    rules,
    importStaging: staging,
  };
  const real = createHelperService(parts);
  const service = new FakeHelperService();
  for (const name of RULE_METHODS) Object.assign(service, { [name]: real[name] });
  return { service, staging };
}
