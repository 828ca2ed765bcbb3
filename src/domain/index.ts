/**
 * The pure domain core: amendments in every form, the contract diff, the rules language
 * and the planner. Safe to import from workflow code (no I/O, no clock, no randomness).
 */
export { type AppliedState, AMENDMENT_RULE, type Normalised, normaliseAmendment, planAmendment } from './planner';
export { type Ruleset, type RulesetDocument, RulesetDocumentSchema, compileRuleset, loadRuleset } from './rules';
export { CLAUSE_ORDER, applyChanges, diff, invertChanges } from './diff';
export { applyChangeOps } from './changeops';
export { type ClauseReading, type Extraction, contractFromClauses, readClauses, readDate, wordsToNumber } from './clauses';
export { sha256Hex } from './sha256';
export { parseAmendmentText, parseStructuredText } from './document';
export { InputError, type InputIssue } from './errors';
export { appliedAfter, replay } from './history';
export { AppliedStateSchema, type CaseResult, type RuleCase, loadCases, runCases } from './cases';
export { type WebhookMapping, WebhookMappingSchema, type WebhookPayload, amendmentFromWebhook, loadWebhookMapping } from './webhook';
