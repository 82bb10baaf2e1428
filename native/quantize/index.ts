/**
 * Post-training full-int8 quantisation of float TFLite models (native/README.md, "Quantiser"):
 *
 *   const { bytes, record } = await quantizeWithCalibration(floatBytes, inputs);   // calibrate, then quantise
 *   const { bytes } = quantizeFromRecord(floatBytes, record);                      // the same bytes, from the numbers
 */
import { calibrate, CalibrateOptions, CalibrationInputs, rangesFrom } from './calibrate';
import { QuantizeParameters, quantizeModel, QuantizeReport } from './quantize';
import { parseMethod, RangeMethod } from './ranges';
import { CalibrationRecord, makeRecord, recordParameters, sha256 } from './record';

export { calibrate, rangesFrom } from './calibrate';
export type { Calibration, CalibrationInputs } from './calibrate';
export { checkEdgeTpu } from './edgetpu-check';
export type { EdgeTpuCheck, EdgeTpuFinding } from './edgetpu-check';
export { QuantizeError, quantizeModel } from './quantize';
export type { QuantizeParameters, QuantizeReport } from './quantize';
export { describeMethod, parseMethod } from './ranges';
export type { RangeMethod } from './ranges';
export { makeRecord, recordParameters, sha256 } from './record';
export type { CalibrationRecord } from './record';
export { readModel, writeModel } from './tflite-file';

/** The range method the committed MobileFaceNet record uses (native/README.md compares them). */
export const DEFAULT_METHOD = 'mse';

export interface QuantizeWithCalibrationOptions extends CalibrateOptions {
  /** Range method (default mse). */
  method?: RangeMethod;
  /** For the record: the float model's file name, the command line, what the samples were. */
  modelFile?: string;
  command?: string;
  source?: string;
}

export async function quantizeWithCalibration(
  floatModel: Uint8Array,
  inputs: CalibrationInputs,
  options: QuantizeWithCalibrationOptions = {},
): Promise<{
  bytes: Uint8Array;
  parameters: QuantizeParameters;
  report: QuantizeReport;
  record: CalibrationRecord;
  samples: number;
}> {
  const method = options.method ?? parseMethod(DEFAULT_METHOD);
  const calibration = await calibrate(floatModel, inputs, options);
  const parameters: QuantizeParameters = {
    ranges: rangesFrom(calibration, method),
    equalization: calibration.equalization,
  };
  const { bytes, report } = quantizeModel(floatModel, parameters);
  const record = makeRecord({
    modelFile: options.modelFile ?? 'model.tflite',
    floatModel,
    int8Model: bytes,
    command: options.command ?? '',
    source: options.source ?? '',
    samples: calibration.samples,
    method: method.name === 'percentile' ? `percentile:${method.p}` : method.name,
    parameters,
  });
  return { bytes, parameters, report, record, samples: calibration.samples };
}

/**
 * The int8 model from a calibration record (no photos, no inference).
 * `identical` is false when this quantiser gives other bytes than the ones
 * the record's figures were measured on.
 */
export function quantizeFromRecord(
  floatModel: Uint8Array,
  record: unknown,
): { bytes: Uint8Array; report: QuantizeReport; identical: boolean } {
  const parameters = recordParameters(record, floatModel);
  const { bytes, report } = quantizeModel(floatModel, parameters);
  return { bytes, report, identical: sha256(bytes) === (record as CalibrationRecord).result?.sha256 };
}
