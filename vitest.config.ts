import { defineConfig } from 'vitest/config';

// One runner for the whole repository: unit tests live next to each package,
// integration / e2e / fault suites under test/.
export default defineConfig({
  test: {
    include: ['shared/test/**/*.test.ts', 'masa/test/**/*.test.ts', 'registrar/test/**/*.test.ts',
      'pledge-sim/test/**/*.test.ts', 'join-proxy/test/**/*.test.ts', 'test/**/*.test.ts', 'cli/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
