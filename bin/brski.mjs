#!/usr/bin/env node
// Thin launcher: runs the TypeScript CLI through tsx's loader so the repo needs no build step.
import { register } from 'tsx/esm/api';
register();
await import('../cli/brski.ts');
