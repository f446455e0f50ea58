//! Step photos resized for a phone's screen: `…/files/HASH?w=480` (or 960) sends the image at
//! that width, made once from the held blob and kept under `HOME/web-images/`.
//!
//! Blobs come from peers: a held blob's bytes match its hash, but nothing says they are a sane
//! image. Decoding runs with limits ([`MAX_SIDE`], [`MAX_ALLOC`], [`MAX_INPUT`]), off the async
//! threads, one at a time; an image that fails them is remembered as failed and its original
//! is sent instead (as it would be without resizing). Only JPEG, PNG and WebP are decoded; a
//! PNG stays PNG (drawings keep their lines), anything else becomes JPEG.

use crate::blobs::store::BlobStore;
use hedgerow_protocol::attachment::BlobHash;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

/// The widths served, in pixels: a phone, and a phone at twice the density or a laptop.
pub const WIDTHS: &[u32] = &[480, 960];

/// Longest side decoded, in pixels; larger images are not resized.
pub const MAX_SIDE: u32 = 12_000;

/// Most memory one decode may take, bytes (a 24 MP photo needs about 72 MB).
pub const MAX_ALLOC: u64 = 128 * 1024 * 1024;

/// Largest blob decoded, bytes.
pub const MAX_INPUT: u64 = 40 * 1024 * 1024;

/// JPEG quality of resized photos.
const JPEG_QUALITY: u8 = 80;

/// The folder of the home the resized images are kept in.
pub const CACHE_DIR: &str = "web-images";

/// Why an image was not resized.
#[derive(Debug, thiserror::Error)]
pub enum ResizeError {
    /// The blob is larger than [`MAX_INPUT`].
    #[error("the image is {0} bytes, more than the {MAX_INPUT} decoded for resizing")]
    TooLarge(u64),
    /// Not JPEG, PNG or WebP, or broken, or over the limits.
    #[error("cannot decode the image: {0}")]
    Decode(#[from] image::ImageError),
    /// Reading the blob or writing the cache failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What to send for a resized image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resized {
    /// A file of the cache, with its media type.
    File(PathBuf, &'static str),
    /// The original blob: already no wider than asked, or not resizable.
    Original,
}

/// Where resized images are kept, and the store they are made from.
#[derive(Debug, Clone)]
pub struct ImageCache {
    dir: PathBuf,
    blobs: BlobStore,
}

impl ImageCache {
    /// The cache of the home at `home_root`.
    pub fn new(home_root: &Path, blobs: BlobStore) -> Self {
        ImageCache {
            dir: home_root.join(CACHE_DIR),
            blobs,
        }
    }

    fn entry(&self, hash: &BlobHash, width: u32, ext: &str) -> PathBuf {
        self.dir.join(format!("{}-{width}.{ext}", hash.to_hex()))
    }

    /// The image `hash` at `width` (one of [`WIDTHS`]): from the cache, else made now (blocking:
    /// call it off the async threads).
    pub fn get(&self, hash: &BlobHash, width: u32) -> Resized {
        for (ext, media) in [("jpg", "image/jpeg"), ("png", "image/png")] {
            let path = self.entry(hash, width, ext);
            if path.is_file() {
                return Resized::File(path, media);
            }
        }
        if self.entry(hash, width, "original").is_file() {
            return Resized::Original;
        }
        match self.make(hash, width) {
            Ok(resized) => resized,
            Err(e) => {
                tracing::info!("web page: image {} not resized: {e}", hash.to_hex());
                // Remembered, so a hostile blob is decoded once, not on every request.
                let _ = std::fs::create_dir_all(&self.dir)
                    .and_then(|()| std::fs::write(self.entry(hash, width, "original"), b""));
                Resized::Original
            }
        }
    }

    fn make(&self, hash: &BlobHash, width: u32) -> Result<Resized, ResizeError> {
        let path = self.blobs.path(hash);
        let io = |what| {
            let path = path.clone();
            move |source| ResizeError::Io { what, path, source }
        };
        let file = std::fs::File::open(&path).map_err(io("open"))?;
        let size = file.metadata().map_err(io("read"))?.len();
        if size > MAX_INPUT {
            return Err(ResizeError::TooLarge(size));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        BufReader::new(file)
            .take(MAX_INPUT)
            .read_to_end(&mut bytes)
            .map_err(io("read"))?;
        let Some((out, format)) = resize(&bytes, width)? else {
            std::fs::create_dir_all(&self.dir).map_err(io("create"))?;
            let marker = self.entry(hash, width, "original");
            std::fs::write(&marker, b"").map_err(io("write"))?;
            return Ok(Resized::Original);
        };
        let (ext, media) = match format {
            ImageFormat::Png => ("png", "image/png"),
            _ => ("jpg", "image/jpeg"),
        };
        std::fs::create_dir_all(&self.dir).map_err(|source| ResizeError::Io {
            what: "create",
            path: self.dir.clone(),
            source,
        })?;
        let target = self.entry(hash, width, ext);
        // Written aside then renamed: a reader never sees half a file.
        let partial = target.with_extension(format!("{ext}.part-{}", std::process::id()));
        std::fs::write(&partial, &out).map_err(|source| ResizeError::Io {
            what: "write",
            path: partial.clone(),
            source,
        })?;
        std::fs::rename(&partial, &target).map_err(|source| ResizeError::Io {
            what: "rename",
            path: target.clone(),
            source,
        })?;
        Ok(Resized::File(target, media))
    }
}

/// The image in `bytes` scaled down to `width` pixels wide (height in proportion), encoded as
/// PNG when it came as PNG, else JPEG; `None` when it is no wider than `width` already.
pub fn resize(bytes: &[u8], width: u32) -> Result<Option<(Vec<u8>, ImageFormat)>, ResizeError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ResizeError::Io {
            what: "read",
            path: PathBuf::new(),
            source: e,
        })?;
    let format = reader.format();
    if !matches!(
        format,
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP)
    ) {
        return Err(ResizeError::Decode(image::ImageError::Unsupported(
            image::error::UnsupportedError::from_format_and_kind(
                image::error::ImageFormatHint::Unknown,
                image::error::UnsupportedErrorKind::Format(image::error::ImageFormatHint::Unknown),
            ),
        )));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let image = reader.decode()?;
    if image.width() <= width {
        return Ok(None);
    }
    let height = ((u64::from(image.height()) * u64::from(width)) / u64::from(image.width()))
        .clamp(1, u64::from(MAX_SIDE)) as u32;
    let small = image.thumbnail_exact(width, height);
    let mut out = Cursor::new(Vec::new());
    let format = if format == Some(ImageFormat::Png) {
        small.write_to(&mut out, ImageFormat::Png)?;
        ImageFormat::Png
    } else {
        let rgb = DynamicImage::ImageRgb8(small.to_rgb8());
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
        rgb.write_with_encoder(encoder)?;
        ImageFormat::Jpeg
    };
    Ok(Some((out.into_inner(), format)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbaImage::from_fn(width, height, |x, y| {
            image::Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255])
        });
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(image)
            .write_to(&mut out, ImageFormat::Png)
            .expect("encode");
        out.into_inner()
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image)
            .write_to(&mut out, ImageFormat::Jpeg)
            .expect("encode");
        out.into_inner()
    }

    #[test]
    fn a_wide_image_is_scaled_to_the_width_asked_keeping_its_proportions() {
        let (out, format) = resize(&png(1200, 600), 480)
            .expect("resized")
            .expect("smaller");
        assert_eq!(format, ImageFormat::Png);
        let back = image::load_from_memory(&out).expect("decodes");
        assert_eq!((back.width(), back.height()), (480, 240));
        let (out, format) = resize(&jpeg(1600, 1200), 960)
            .expect("resized")
            .expect("smaller");
        assert_eq!(format, ImageFormat::Jpeg);
        let back = image::load_from_memory(&out).expect("decodes");
        assert_eq!((back.width(), back.height()), (960, 720));
    }

    #[test]
    fn a_small_image_is_sent_as_it_is() {
        assert!(resize(&png(300, 200), 480).expect("decodes").is_none());
    }

    #[test]
    fn hostile_images_are_refused_not_decoded() {
        // Wider than the limit (cheap to make: one row).
        assert!(matches!(
            resize(&png(MAX_SIDE + 1, 1), 480),
            Err(ResizeError::Decode(_))
        ));
        // Not an image, and a truncated one.
        assert!(resize(b"<svg onload=alert(1)>", 480).is_err());
        let mut cut = jpeg(800, 600);
        cut.truncate(200);
        assert!(resize(&cut, 480).is_err());
        // Within each side's limit but over the memory limit: 12000 x 12000 RGBA is 576 MB.
        let header = png(1, 1);
        let mut big = header.clone();
        // IHDR width and height at bytes 16..24, then the chunk's CRC at 29..33.
        big[16..20].copy_from_slice(&MAX_SIDE.to_be_bytes());
        big[20..24].copy_from_slice(&MAX_SIDE.to_be_bytes());
        let crc = crc32(&big[12..29]);
        big[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(resize(&big, 480), Err(ResizeError::Decode(_))));
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
