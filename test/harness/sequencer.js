/**
 * Jest runs the slowest files first; the scale tests (test/scale) go last instead, so their
 * load on the shared servers meets as few other files as possible.
 */
const Sequencer = require('@jest/test-sequencer').default;

class AmendctlSequencer extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    const scale = (t) => /[\\/]test[\\/]scale[\\/]/.test(t.path);
    return [...sorted.filter((t) => !scale(t)), ...sorted.filter(scale)];
  }
}

module.exports = AmendctlSequencer;
