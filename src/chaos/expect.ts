/**
 * What every account of a chaos contract must be at the end, from the contract its last
 * amendment produces and the ruleset's role and module maps (the reference policy):
 *
 * - a named user of an active or suspended contract: the account is active only while the
 *   contract is active; in the identity provider it is in the group of its role and one
 *   group per licensed module, in the warehouse it holds the role of its role;
 * - someone the contract named once and no longer does: the account is kept, inactive, in
 *   none of the customer's groups and holding no role.
 *
 * The identity provider's attributes (externalId, displayName) are those the plans asked
 * for last (ensureAccount, updateAttributes). The readers compare exactly this shape.
 */
import type { Template } from '../domain/cel';
import { ANY, type Ruleset } from '../domain/rules';
import type { ContractScenario } from './scenario';

/** The reference targets (examples/reference/targets.yaml). */
export const IDP = 'idp';
export const WAREHOUSE = 'warehouse';

export interface ScimAccount {
  active: boolean;
  externalId: string | null;
  displayName: string | null;
  groups: string[];
}

export interface PgAccount {
  login: boolean;
  memberOf: string[];
}

export interface ExpectedAccounts {
  /** By userName (the email). */
  idp: Map<string, ScimAccount>;
  /** By role name (the email). */
  warehouse: Map<string, PgAccount>;
}

export function expectedAccounts(c: ContractScenario, ruleset: Ruleset): ExpectedAccounts {
  const customer = c.customerId;
  const mapped = (
    perTarget: Map<string, Template> | undefined,
    target: string,
    ctx: Record<string, unknown>,
  ): string[] => {
    const t = perTarget?.get(target);
    return t ? [t.render({ customer, ...ctx })] : [];
  };
  const roleIn = (role: string, target: string): string[] => mapped(ruleset.roleMap.get(role), target, {});
  const moduleIn = (module: string, target: string): string[] =>
    mapped(ruleset.moduleMap.get(module) ?? ruleset.moduleMap.get(ANY), target, { module });
  const attributes = lastAttributes(c);
  const idp = new Map<string, ScimAccount>();
  const warehouse = new Map<string, PgAccount>();
  const active = c.final.status === 'active';
  const current = new Map(c.final.namedUsers.map((u) => [u.email, u]));
  for (const email of [...c.everNamed.keys()].sort()) {
    const u = current.get(email);
    const attrs = attributes.get(email) ?? {};
    const base = { externalId: attrs.externalId ?? null, displayName: attrs.displayName ?? null };
    if (u) {
      idp.set(email, {
        ...base,
        active,
        groups: [...roleIn(u.role, IDP), ...c.final.modules.flatMap((m) => moduleIn(m, IDP))].sort(),
      });
      warehouse.set(email, { login: active, memberOf: roleIn(u.role, WAREHOUSE).sort() });
    } else {
      idp.set(email, { ...base, active: false, groups: [] });
      warehouse.set(email, { login: false, memberOf: [] });
    }
  }
  return { idp, warehouse };
}

/** Per subject, the identity provider attributes the plans set, the later ones winning. */
function lastAttributes(c: ContractScenario): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const plan of c.plans) {
    for (const op of plan.operations) {
      if (op.target !== IDP || (op.action !== 'ensureAccount' && op.action !== 'updateAttributes')) continue;
      const attrs = op.params['attributes'];
      if (!attrs || typeof attrs !== 'object' || Array.isArray(attrs)) continue;
      const into = out.get(op.subject) ?? {};
      for (const [k, v] of Object.entries(attrs)) if (typeof v === 'string') into[k] = v;
      out.set(op.subject, into);
    }
  }
  return out;
}
