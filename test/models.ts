/** Paths of the real models, as the package ships them (build/models/, copied at build time; nothing is downloaded). */
import * as path from 'path';
import { shippedModels } from '../native';

export const MODELS = {
  mobilefacenet: shippedModels.mobilefacenet,
  'blazeface-short': shippedModels.blazefaceShort,
  'blazeface-full': shippedModels.blazefaceFull,
} as const;

export type ModelName = keyof typeof MODELS;

/** The dev photo set beside the project (never committed into it). */
export const FACES_DIR =
  process.env.CORAL_FACES_DIR ?? path.resolve(__dirname, '..', '..', '..', 'shared', 'faces', 'dev');
