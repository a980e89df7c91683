/**
 * The usual registrar test world: a fixture PKI and config, the test MASA, and a started registrar.
 * Tests that need Redis or other wiring build their own from the same parts.
 */
import { createRegistrar, type Registrar } from '../../src/server.ts';
import { makeFixture, type Fixture } from './fixture.ts';
import { startTestMasa, type TestMasa } from './test-masa.ts';

export interface RegistrarWorld { fx: Fixture; masa: TestMasa; reg: Registrar; stop(): Promise<void> }

export async function startRegistrarWorld(opts: Parameters<typeof makeFixture>[0] = {}): Promise<RegistrarWorld> {
  const fx = await makeFixture(opts);
  const masa = await startTestMasa(fx);
  const reg = createRegistrar(fx.config);
  try {
    await reg.start();
  } catch (e) {
    await masa.stop();
    throw e;
  }
  return { fx, masa, reg, async stop() { await reg.stop(); await masa.stop(); } };
}
