//! A QR code of a text as a PNG image, pure and deterministic (the same text gives the same
//! bytes, so an unchanged Secret needs no write).
use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::{Color, EcLevel, bits};

/// Pixels per QR module: about 4 cm wide on a screen for a typical provisioning document.
const MODULE_PIXELS: usize = 4;
/// Light modules around the code, as ISO/IEC 18004 asks for scanners to find it.
const QUIET_ZONE: usize = 4;

/// Why a text has no QR code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrError {
    /// Longer than the largest QR code holds (2,953 bytes at the lowest error correction).
    #[error("{bytes} bytes do not fit in a QR code (at most 2953)")]
    TooLong { bytes: usize },
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

/// `text` as a QR code in a 1-bit grayscale PNG. Error correction M (15 % of the code may be
/// unreadable) where the text fits, else L.
///
/// The mask is fixed (pattern 0, the checkerboard) rather than the one of the eight with the
/// lowest ISO/IEC 18004 penalty: scoring all eight is 95 % of the cost of a code (about
/// 150 ms against 5 ms in a debug build), paid per user and reconcile, and every decoder reads
/// any mask (the tests decode each document's code).
pub fn qr_png(text: &str) -> Result<Vec<u8>, QrError> {
    let too_long = |_| QrError::TooLong { bytes: text.len() };
    let (bits, level) = bits::encode_auto(text.as_bytes(), EcLevel::M)
        .map(|b| (b, EcLevel::M))
        .or_else(|_| bits::encode_auto(text.as_bytes(), EcLevel::L).map(|b| (b, EcLevel::L)))
        .map_err(too_long)?;
    let version = bits.version();
    let (data, ec) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, level).map_err(too_long)?;
    let mut canvas = Canvas::new(version, level);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec);
    canvas.apply_mask(MaskPattern::Checkerboard);
    let modules = usize::try_from(version.width()).map_err(|e| QrError::Png(e.to_string()))?;
    let colors = canvas.into_colors();
    let side = (modules + 2 * QUIET_ZONE) * MODULE_PIXELS;
    let row_bytes = side.div_ceil(8);
    // 1 bit per pixel, MSB first; 1 = white. Each module row is drawn once and repeated.
    let mut pixels = vec![0xffu8; row_bytes * side];
    for (my, row) in colors.chunks(modules).enumerate() {
        let top = (my + QUIET_ZONE) * MODULE_PIXELS * row_bytes;
        let line = &mut pixels[top..top + row_bytes];
        for (mx, _) in row.iter().enumerate().filter(|(_, c)| **c == Color::Dark) {
            let x0 = (mx + QUIET_ZONE) * MODULE_PIXELS;
            for x in x0..x0 + MODULE_PIXELS {
                line[x / 8] &= !(0x80 >> (x % 8));
            }
        }
        for copy in 1..MODULE_PIXELS {
            pixels.copy_within(top..top + row_bytes, top + copy * row_bytes);
        }
    }
    let side = u32::try_from(side).map_err(|e| QrError::Png(e.to_string()))?;
    let mut out = Vec::with_capacity(pixels.len() / 4);
    {
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        let mut writer = encoder.write_header().map_err(|e| QrError::Png(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| QrError::Png(e.to_string()))?;
        writer.finish().map_err(|e| QrError::Png(e.to_string()))?;
    }
    Ok(out)
}

/// Decodes the first QR code in a PNG made by [`qr_png`] (tests only: a scanner's view).
#[cfg(test)]
pub fn decode_png(bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("PNG header");
    // Expand the 1-bit pixels to 8-bit gray.
    let info = reader.info();
    assert_eq!(
        (info.color_type, info.bit_depth),
        (png::ColorType::Grayscale, png::BitDepth::One)
    );
    let (w, h) = (info.width as usize, info.height as usize);
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut buf).expect("PNG frame");
    let row_bytes = frame.line_size;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        if buf[y * row_bytes + x / 8] & (0x80 >> (x % 8)) != 0 {
            255
        } else {
            0
        }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    let (_, text) = grids[0].decode().expect("QR decodes");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_holds_a_qr_code_of_exactly_the_text() {
        let text = "<config xmlns=\"http://www.linphone.org/xsds/lpconfig.xsd\">\n  <section name=\"proxy_0\"/>\n</config>\n";
        let png = qr_png(text).expect("encodes");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(decode_png(&png), text);
        assert_eq!(qr_png(text).expect("encodes"), png, "deterministic");
    }

    #[test]
    fn a_text_too_long_for_any_qr_code_is_refused() {
        let text = "x".repeat(3000);
        assert_eq!(qr_png(&text), Err(QrError::TooLong { bytes: 3000 }));
        let fits = "x".repeat(2900);
        assert_eq!(decode_png(&qr_png(&fits).expect("fits at L")), fits);
    }
}
