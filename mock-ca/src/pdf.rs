//! The application ("Заявление") for issued certificates as a one-page PDF.
//!
//! Cyrillic needs a real font: the TrueType file is embedded as a CIDFontType2 with `Identity-H`
//! encoding (ISO 32000-1 §9.7.4), text is written as glyph ids, and a `ToUnicode` CMap (§9.10.3)
//! maps them back so `pdftotext` and screen readers get the text. Only the glyphs the page uses
//! are embedded (typst's `subsetter`), renumbered from 1, under a subset name `ABCDEF+Font`
//! (§9.6.4): the whole DejaVu Sans is 740 KB, its page's subset a few kilobytes.

use std::collections::BTreeMap;
use std::path::Path;

use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Document, Object, Stream, dictionary};

use crate::error::{CaError, Result};

/// Debian's DejaVu Sans (package `fonts-dejavu-core`): Latin, Cyrillic and Kazakh letters.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// One line of the page.
#[derive(Clone, Debug)]
pub struct Line {
    /// Font size in points.
    pub size: f32,
    /// The text.
    pub text: String,
}

impl Line {
    /// A line of `size` points.
    pub fn new(size: f32, text: impl Into<String>) -> Line {
        Line {
            size,
            text: text.into(),
        }
    }
}

const PAGE_W: f32 = 595.0; // A4 in points
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;

/// Renders `lines` top to bottom on one A4 page.
pub fn render(font_path: &Path, title: &str, lines: &[Line]) -> Result<Vec<u8>> {
    let font_bytes = std::fs::read(font_path).map_err(|e| CaError::Font {
        path: font_path.display().to_string(),
        why: e.to_string(),
    })?;
    let face = ttf_parser::Face::parse(&font_bytes, 0).map_err(|e| CaError::Font {
        path: font_path.display().to_string(),
        why: e.to_string(),
    })?;
    let units = f32::from(face.units_per_em());

    // The glyphs the page uses, renumbered for the subset (0 stays .notdef), with their widths
    // and the characters they stand for.
    let glyph = |ch: char| {
        face.glyph_index(ch)
            .or_else(|| face.glyph_index('?'))
            .map_or(0, |g| g.0)
    };
    // A glyph keeps the number the remapper first gave it, so the text is written in one pass.
    let mut remapper = subsetter::GlyphRemapper::new();
    let mut used: BTreeMap<u16, (i64, char)> = BTreeMap::new();
    let mut ops = vec![Operation::new("BT", vec![])];
    let y = PAGE_H - MARGIN;
    let mut first = true;
    for line in lines {
        let mut hex = Vec::with_capacity(line.text.len() * 2);
        for ch in line.text.chars() {
            let old = glyph(ch);
            let new = remapper.remap(old);
            used.entry(new).or_insert_with(|| {
                let width = face
                    .glyph_hor_advance(ttf_parser::GlyphId(old))
                    .unwrap_or(0);
                ((f32::from(width) * 1000.0 / units).round() as i64, ch)
            });
            hex.extend_from_slice(&new.to_be_bytes());
        }
        let step = line.size * 1.45;
        ops.push(Operation::new("Tf", vec!["F1".into(), line.size.into()]));
        if first {
            ops.push(Operation::new(
                "Td",
                vec![MARGIN.into(), (y - line.size).into()],
            ));
            first = false;
        } else {
            ops.push(Operation::new("Td", vec![0.into(), (-step).into()]));
        }
        ops.push(Operation::new(
            "Tj",
            vec![Object::String(hex, lopdf::StringFormat::Hexadecimal)],
        ));
    }
    ops.push(Operation::new("ET", vec![]));
    let mut doc = Document::with_version("1.7");
    let font_name = face
        .names()
        .into_iter()
        .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
        // The first record may be Macintosh-encoded, which ttf-parser does not decode.
        .find_map(|n| n.to_string())
        .unwrap_or_else(|| "EmbeddedFont".to_owned())
        .replace(' ', "");
    let font_name = format!("{}+{font_name}", subset_tag(&used));
    let subset = subsetter::subset(&font_bytes, 0, &remapper).map_err(|e| CaError::Font {
        path: font_path.display().to_string(),
        why: format!("cannot subset it: {e}"),
    })?;

    let mut file = Stream::new(dictionary! { "Length1" => subset.len() as i64 }, subset);
    file.compress().map_err(|e| CaError::Pdf(e.to_string()))?;
    let file_id = doc.add_object(file);
    let bbox = face.global_bounding_box();
    let scale = |v: i16| (f32::from(v) * 1000.0 / units).round() as i64;
    let descriptor_id = doc.add_object(dictionary! {
        "Type" => "FontDescriptor",
        "FontName" => Object::Name(font_name.clone().into_bytes()),
        "Flags" => 32,
        "FontBBox" => vec![scale(bbox.x_min).into(), scale(bbox.y_min).into(), scale(bbox.x_max).into(), scale(bbox.y_max).into()],
        "ItalicAngle" => 0,
        "Ascent" => scale(face.ascender()),
        "Descent" => scale(face.descender()),
        "CapHeight" => scale(face.capital_height().unwrap_or(face.ascender())),
        "StemV" => 80,
        "FontFile2" => file_id,
    });
    let widths: Vec<Object> = used
        .iter()
        .flat_map(|(gid, (w, _))| {
            [
                Object::Integer(i64::from(*gid)),
                Object::Array(vec![Object::Integer(*w)]),
            ]
        })
        .collect();
    let cid_font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "CIDFontType2",
        "BaseFont" => Object::Name(font_name.clone().into_bytes()),
        "CIDSystemInfo" => dictionary! {
            "Registry" => Object::string_literal("Adobe"),
            "Ordering" => Object::string_literal("Identity"),
            "Supplement" => 0,
        },
        "FontDescriptor" => descriptor_id,
        "CIDToGIDMap" => "Identity",
        "W" => widths,
    });
    let to_unicode_id = doc.add_object(Stream::new(
        Dictionary::new(),
        to_unicode(&used).into_bytes(),
    ));
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type0",
        "BaseFont" => Object::Name(font_name.into_bytes()),
        "Encoding" => "Identity-H",
        "DescendantFonts" => vec![cid_font_id.into()],
        "ToUnicode" => to_unicode_id,
    });

    let pages_id = doc.new_object_id();
    let content = Content { operations: ops }
        .encode()
        .map_err(|e| CaError::Pdf(e.to_string()))?;
    let mut content = Stream::new(Dictionary::new(), content);
    content
        .compress()
        .map_err(|e| CaError::Pdf(e.to_string()))?;
    let content_id = doc.add_object(content);
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "MediaBox" => vec![0.into(), 0.into(), PAGE_W.into(), PAGE_H.into()],
        "Contents" => content_id,
        "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 },
        ),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    let info_id = doc.add_object(dictionary! {
        "Title" => Object::String(utf16be(title), lopdf::StringFormat::Hexadecimal),
        "Producer" => Object::string_literal("kilt-ca"),
    });
    doc.trailer.set("Root", catalog_id);
    doc.trailer.set("Info", info_id);
    let mut out = Vec::new();
    doc.save_to(&mut out)
        .map_err(|e| CaError::Pdf(e.to_string()))?;
    Ok(out)
}

/// The six capital letters that name a font subset (§9.6.4), from the glyphs it holds: the same
/// page gives the same name, different glyph sets different ones.
fn subset_tag(used: &BTreeMap<u16, (i64, char)>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
    for ch in used.values().map(|(_, c)| *c) {
        for b in u32::from(ch).to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    (0..6)
        .map(|i| char::from(b'A' + ((h >> (i * 8)) % 26) as u8))
        .collect()
}

/// A text string for the document information dictionary: UTF-16BE with a BOM (§7.9.2.2).
fn utf16be(text: &str) -> Vec<u8> {
    let mut out = vec![0xfe, 0xff];
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out
}

/// The `ToUnicode` CMap: glyph id → the character it was chosen for (§9.10.3).
fn to_unicode(used: &BTreeMap<u16, (i64, char)>) -> String {
    let mut out = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    let entries: Vec<_> = used.iter().collect();
    // At most 100 entries per bfchar block (§9.10.3 via the CMap spec).
    for block in entries.chunks(100) {
        out.push_str(&format!("{} beginbfchar\n", block.len()));
        for (gid, (_, ch)) in block {
            let mut units = [0u16; 2];
            let hex: String = ch
                .encode_utf16(&mut units)
                .iter()
                .map(|u| format!("{u:04X}"))
                .collect();
            out.push_str(&format!("<{gid:04X}> <{hex}>\n"));
        }
        out.push_str("endbfchar\n");
    }
    out.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_unicode_maps_cyrillic_glyphs_back_to_their_letters() {
        let mut used = BTreeMap::new();
        used.insert(0x0123, (600, 'Ж'));
        used.insert(0x0042, (500, 'A'));
        let cmap = to_unicode(&used);
        assert!(cmap.contains("<0123> <0416>"), "{cmap}");
        assert!(cmap.contains("<0042> <0041>"), "{cmap}");
        assert!(cmap.contains("2 beginbfchar"));
    }

    #[test]
    fn subset_names_are_six_capitals_that_follow_the_glyphs() {
        let mut used = BTreeMap::new();
        used.insert(1, (600, 'Ж'));
        let one = subset_tag(&used);
        assert_eq!(one.len(), 6);
        assert!(one.bytes().all(|b| b.is_ascii_uppercase()), "{one}");
        assert_eq!(one, subset_tag(&used.clone()));
        used.insert(2, (500, 'A'));
        assert_ne!(one, subset_tag(&used));
    }

    #[test]
    fn a_missing_font_says_how_to_install_one() {
        let err = render(Path::new("/nonexistent/font.ttf"), "t", &[]).unwrap_err();
        assert!(err.to_string().contains("fonts-dejavu-core"), "{err}");
    }
}
