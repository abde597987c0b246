//! Truncated-JPEG detection. The `image` crate's JPEG decoder (zune-jpeg in non-strict mode) decodes a file cut
//! short — an interrupted download or copy — without an error, filling the missing rows with grey, where Pillow
//! raises "image file is truncated". [`check_complete`] walks the file's marker segments and entropy-coded scan
//! data and requires the main image's end-of-image marker (FF D9); segments are skipped by their length, so an
//! EXIF thumbnail (a whole JPEG inside APP1) cannot stand in for the main image's end. Bytes after the end marker
//! are ignored, as decoders do. Strict mode of the decoder is not used instead: it also rejects harmless
//! deviations (bytes between segments) that real photo collections hold and Pillow accepts.

/// SOI: every JPEG starts with it.
const SOI: [u8; 2] = [0xFF, 0xD8];

/// Does `bytes` start like a JPEG?
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&SOI)
}

/// `Ok` for a non-JPEG or a JPEG that reaches its end-of-image marker; otherwise a description of where the data
/// stops (for the loader's "corrupt image" report).
pub fn check_complete(bytes: &[u8]) -> Result<(), String> {
    if !is_jpeg(bytes) {
        return Ok(());
    }
    let n = bytes.len();
    let truncated = |what: &str| {
        Err(format!(
            "truncated JPEG: the file ends ({n} bytes) {what}, before the end-of-image marker"
        ))
    };
    let mut i = SOI.len();
    loop {
        // Next marker: bytes outside segments that are not 0xFF are tolerated (non-strict, as decoders are).
        match bytes[i.min(n)..].iter().position(|&b| b == 0xFF) {
            Some(k) => i += k,
            None => return truncated("between segments"),
        }
        while i < n && bytes[i] == 0xFF {
            i += 1; // fill bytes
        }
        let Some(&marker) = bytes.get(i) else {
            return truncated("inside a marker");
        };
        i += 1;
        match marker {
            0xD9 => return Ok(()),
            // Standalone markers (no length): TEM, RSTn, a repeated SOI; 0x00 is stray stuffing.
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let Some(len) = bytes
            .get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        else {
            return truncated(&format!("inside the length of segment FF{marker:02X}"));
        };
        if len < 2 {
            return Err(format!(
                "corrupt JPEG: segment FF{marker:02X} at byte {} has length {len}",
                i - 2
            ));
        }
        if i + len > n {
            return truncated(&format!("inside segment FF{marker:02X}"));
        }
        i += len;
        if marker == 0xDA {
            // Entropy-coded data of a scan: runs until a marker that is neither stuffing (FF 00) nor a restart.
            loop {
                match bytes[i..].iter().position(|&b| b == 0xFF) {
                    Some(k) => i += k,
                    None => return truncated("inside the image data"),
                }
                let mut j = i + 1;
                while j < n && bytes[j] == 0xFF {
                    j += 1;
                }
                match bytes.get(j) {
                    None => return truncated("inside the image data"),
                    Some(0x00 | 0xD0..=0xD7) => i = j + 1,
                    Some(_) => break, // i is at the marker's 0xFF
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A baseline JPEG written by the `image` crate (with restart-free scan data).
    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 13 % 256) as u8,
                ((x + y) % 256) as u8,
            ])
        });
        let mut out = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
        out
    }

    #[test]
    fn complete_files_pass_and_every_truncation_fails() {
        let full = jpeg(40, 24);
        assert_eq!(check_complete(&full), Ok(()));
        // Trailing bytes after EOI are ignored; a non-JPEG is not this check's business.
        let mut padded = full.clone();
        padded.extend_from_slice(&[0, 0, 0x0A]);
        assert_eq!(check_complete(&padded), Ok(()));
        assert_eq!(check_complete(b"\x89PNG\r\n\x1a\n"), Ok(()));
        for cut in 2..full.len() {
            let err = check_complete(&full[..cut]).expect_err(&format!("cut at {cut}"));
            assert!(err.starts_with("truncated JPEG"), "{cut}: {err}");
        }
        // A cut inside the scan data (an interrupted download of a large photo) is what the decoder accepts.
        let sos = full.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let cut = &full[..sos + (full.len() - sos) / 3];
        assert!(image::load_from_memory(cut).is_ok());
        let err = check_complete(cut).unwrap_err();
        assert!(err.contains("inside the image data"), "{err}");
    }

    #[test]
    fn a_complete_thumbnail_does_not_hide_a_truncated_main_image() {
        let main = jpeg(48, 32);
        let thumb = jpeg(8, 8);
        // SOI, APP1 holding a whole JPEG (as an EXIF thumbnail does), then the main image's segments.
        let mut file = SOI.to_vec();
        file.extend_from_slice(&[0xFF, 0xE1]);
        file.extend_from_slice(&((thumb.len() + 2) as u16).to_be_bytes());
        file.extend_from_slice(&thumb);
        file.extend_from_slice(&main[2..]);
        assert_eq!(check_complete(&file), Ok(()));
        let cut = file.len() - main.len() / 2;
        assert!(check_complete(&file[..cut]).is_err());
        let bad_len = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01];
        assert!(check_complete(&bad_len).unwrap_err().contains("length 1"));
    }
}
