use crate::{Error, ErrorKind};

/// A file type recognised by its content (magic bytes), never by its name or the
/// client's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileType {
    /// PNG image.
    Png,
    /// JPEG image.
    Jpeg,
    /// GIF image.
    Gif,
    /// WebP image.
    Webp,
    /// PDF document.
    Pdf,
    /// ZIP archive (also DOCX, XLSX, JAR, ...: they are ZIP files).
    Zip,
    /// gzip stream.
    Gzip,
}

impl FileType {
    /// The media type (`image/png`, ...).
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Pdf => "application/pdf",
            Self::Zip => "application/zip",
            Self::Gzip => "application/gzip",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Gif => "gif",
            Self::Webp => "webp",
            Self::Pdf => "pdf",
            Self::Zip => "zip",
            Self::Gzip => "gz",
        }
    }
}

/// Recognises a file's type from its first bytes; `None` when it is none of [`FileType`].
///
/// ```
/// use palisade_validate::{detect_file_type, FileType};
/// assert_eq!(detect_file_type(b"\x89PNG\r\n\x1a\n...."), Some(FileType::Png));
/// assert_eq!(detect_file_type(b"<svg onload=alert(1)>"), None);
/// ```
pub fn detect_file_type(content: &[u8]) -> Option<FileType> {
    let starts = |magic: &[u8]| content.starts_with(magic);
    if starts(b"\x89PNG\r\n\x1a\n") {
        Some(FileType::Png)
    } else if starts(b"\xff\xd8\xff") {
        Some(FileType::Jpeg)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some(FileType::Gif)
    } else if starts(b"RIFF") && content.get(8..12) == Some(b"WEBP") {
        Some(FileType::Webp)
    } else if starts(b"%PDF-") {
        Some(FileType::Pdf)
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        Some(FileType::Zip)
    } else if starts(b"\x1f\x8b\x08") {
        Some(FileType::Gzip)
    } else {
        None
    }
}

/// What uploads are accepted: a size limit and an allowlist of content types.
///
/// ```
/// use palisade_validate::{FileType, UploadPolicy};
/// let avatars = UploadPolicy::new(2 * 1024 * 1024, [FileType::Png, FileType::Jpeg]);
/// let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
/// assert_eq!(avatars.check(png, Some("image/png")), Ok(FileType::Png));
/// assert!(avatars.check(b"%PDF-1.7", None).is_err());        // not on the list
/// assert!(avatars.check(png, Some("image/jpeg")).is_err());  // declared type disagrees
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPolicy {
    max_bytes: usize,
    allowed: Vec<FileType>,
}

impl UploadPolicy {
    /// Accepts files of at most `max_bytes` bytes whose content is one of `allowed`.
    pub fn new(max_bytes: usize, allowed: impl IntoIterator<Item = FileType>) -> Self {
        Self {
            max_bytes,
            allowed: allowed.into_iter().collect(),
        }
    }

    /// The size limit, for a transport layer that wants to stop reading early.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Checks a length announced before the content arrives (`Content-Length`).
    ///
    /// # Errors
    /// [`FileTooLarge`](ErrorKind::FileTooLarge).
    pub fn check_len(&self, len: u64) -> Result<(), Error> {
        if usize::try_from(len).map_or(true, |l| l > self.max_bytes) {
            Err(Error::new(ErrorKind::FileTooLarge))
        } else {
            Ok(())
        }
    }

    /// Checks the whole file: size, type by content against the allowlist, and, when the
    /// client declared a media type, that it agrees with the content (parameters such as
    /// `; charset=` ignored, case-insensitive).
    ///
    /// # Errors
    /// [`FileTooLarge`](ErrorKind::FileTooLarge),
    /// [`FileTypeNotAllowed`](ErrorKind::FileTypeNotAllowed),
    /// [`FileTypeMismatch`](ErrorKind::FileTypeMismatch).
    pub fn check(&self, content: &[u8], declared: Option<&str>) -> Result<FileType, Error> {
        if content.len() > self.max_bytes {
            return Err(Error::new(ErrorKind::FileTooLarge));
        }
        let detected = detect_file_type(content)
            .filter(|t| self.allowed.contains(t))
            .ok_or_else(|| Error::new(ErrorKind::FileTypeNotAllowed))?;
        if let Some(declared) = declared {
            let essence = declared.split(';').next().unwrap_or_default().trim();
            let same = essence.eq_ignore_ascii_case(detected.mime())
                || (detected == FileType::Jpeg && essence.eq_ignore_ascii_case("image/jpg"));
            if !same {
                return Err(Error::new(ErrorKind::FileTypeMismatch));
            }
        }
        Ok(detected)
    }
}
