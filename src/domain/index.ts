/**
 * The pure domain core: amendments in every form, the contract diff, the rules language
 * and the planner. Safe to import from workflow code (no I/O, no clock, no randomness).
 */
export {
  type AppliedState,
  AppliedStateSchema,
  AMENDMENT_RULE,
  type Normalised,
  appliedAfter,
  normaliseAmendment,
  planAmendment,
} from './planner';
export { type Ruleset, type RulesetDocument, RulesetDocumentSchema, compileRuleset, loadRuleset } from './rules';
export { CLAUSE_ORDER, applyChanges, diff, invertChanges } from './diff';
export { applyEdits } from './edits';
export {
  type ClauseReading,
  type Extraction,
  contractFromClauses,
  readClauses,
  readDate,
  wordsToNumber,
} from './clauses';
export { parseAmendmentText, parseStructuredText } from './document';
export { InputError, type InputIssue } from './errors';
