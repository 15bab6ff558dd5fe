import sharp from 'sharp';

/** The box a thumbnail must fit in, in pixels. */
export interface ThumbnailBox {
  width: number;
  height: number;
}

/** A generated thumbnail. */
export interface Thumbnail {
  data: Buffer;
  contentType: string;
}

/** Easemob's default thumbnail box (E4 `thumbnail-width`/`-height` default). */
export const DEFAULT_THUMBNAIL_SIDE = 170;
/** Images up to this size are their own thumbnail (E4 rule). */
export const THUMBNAIL_MIN_BYTES = 10 * 1024;

// The formats thumbnails are made of, by sharp's format name. Other images (SVG, TIFF, HEIC...)
// are served as they are: fewer decoders exposed to uploaded bytes.
const FORMATS: Record<string, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', gif: 'image/gif' };

/** The image type the first bytes of a file announce (one of the thumbnail formats), or null. */
export function sniffImageType(head: Buffer): string | null {
  if (head.length >= 8 && head.readUInt32BE(0) === 0x89504e47 && head.readUInt32BE(4) === 0x0d0a1a0a) return 'image/png';
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'image/jpeg';
  if (head.length >= 6 && /^GIF8[79]a$/.test(head.subarray(0, 6).toString('latin1'))) return 'image/gif';
  if (head.length >= 12 && head.subarray(0, 4).toString('latin1') === 'RIFF' && head.subarray(8, 12).toString('latin1') === 'WEBP') return 'image/webp';
  return null;
}

/**
 * Scales a JPEG, PNG, WebP or GIF image down to fit the box, in its own format (upright by its
 * EXIF orientation, never enlarged). Resolves with null for anything else, or bytes sharp cannot
 * decode: the caller then serves the original.
 */
export async function makeThumbnail(image: Buffer, box: ThumbnailBox): Promise<Thumbnail | null> {
  const type = sniffImageType(image.subarray(0, 16));
  if (type === null) return null;
  try {
    const img = sharp(image, { failOn: 'error' });
    const { format } = await img.metadata();
    if (FORMATS[format] !== type) return null;
    const data = await img
      .rotate()
      .resize(box.width, box.height, { fit: 'inside', withoutEnlargement: true })
      .toFormat(format)
      .toBuffer();
    return { data, contentType: type };
  } catch {
    return null;
  }
}
