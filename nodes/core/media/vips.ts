/**
 * sharp (libvips), set up once for this package. One libvips thread per
 * operation: our images are small (photos to decode, 112 px crops to
 * encode), and libvips' default of one thread per core left its workers
 * competing with the XNNPACK threads of the next inference, which slowed a
 * face embedding right after a decode (test/bench/pipeline.ts; the figures
 * are in the README's design notes). Other
 * sharp work still runs in parallel on the libuv pool.
 */
import sharp from 'sharp';

sharp.concurrency(1);

export default sharp;
