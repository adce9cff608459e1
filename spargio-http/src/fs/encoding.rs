//! Precompressed variants of served files (`<file>.br`, `.zst`, `.gz`,
//! `.zz`) and which one a request's `Accept-Encoding` picks.

use std::path::{Path, PathBuf};

use http::header::ACCEPT_ENCODING;
use http::request::Parts;
use http::HeaderValue;

/// A content coding a precompressed sibling file can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Br,
    Zstd,
    Gzip,
    Deflate,
}

impl Encoding {
    /// Every coding, in the order a tie of qualities is broken (the
    /// smallest files first, as tower-http does).
    const PREFERENCE: [Encoding; 4] = [
        Encoding::Br,
        Encoding::Zstd,
        Encoding::Gzip,
        Encoding::Deflate,
    ];

    /// The token in `Accept-Encoding` and `Content-Encoding`.
    pub(crate) fn token(self) -> &'static str {
        match self {
            Encoding::Br => "br",
            Encoding::Zstd => "zstd",
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }

    /// Whether `coding` (from `Accept-Encoding`) names this one.
    fn is_named(self, coding: &str) -> bool {
        coding.eq_ignore_ascii_case(self.token())
            || (self == Encoding::Gzip && coding.eq_ignore_ascii_case("x-gzip"))
    }

    /// What is appended to a file's name for its sibling in this coding
    /// (tower-http's names).
    fn extension(self) -> &'static str {
        match self {
            Encoding::Br => ".br",
            Encoding::Zstd => ".zst",
            Encoding::Gzip => ".gz",
            Encoding::Deflate => ".zz",
        }
    }

    /// The `Content-Encoding` value.
    pub(crate) fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.token())
    }

    /// `path` with this coding's extension appended to its file name.
    pub(crate) fn sibling(self, path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(self.extension());
        PathBuf::from(name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The codings a service looks for siblings in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Encodings(u8);

impl Encodings {
    /// These codings and `e`.
    pub(crate) fn with(self, e: Encoding) -> Encodings {
        Encodings(self.0 | e.bit())
    }

    /// Whether none is on.
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn contains(self, e: Encoding) -> bool {
        self.0 & e.bit() != 0
    }

    /// The codings of `self` the request accepts (a quality above 0, given
    /// by name or by `*`), in the order to look for siblings: highest
    /// quality first, ties in [`Encoding::PREFERENCE`] order. A quality
    /// that is not a number from 0 to 1 refuses the coding.
    pub(crate) fn accepted_by(self, parts: &Parts) -> Vec<Encoding> {
        if self.is_empty() {
            return Vec::new();
        }
        // Per coding: the best quality given by name; `*` for the rest.
        let mut named: [Option<u16>; 4] = [None; 4];
        let mut star: Option<u16> = None;
        for value in parts.headers.get_all(ACCEPT_ENCODING) {
            let Ok(value) = value.to_str() else { continue };
            for item in value.split(',') {
                let mut params = item.split(';');
                let coding = params.next().unwrap_or("").trim();
                let q = quality(params);
                if coding == "*" {
                    star = Some(star.map_or(q, |s| s.max(q)));
                    continue;
                }
                for (i, e) in Encoding::PREFERENCE.iter().enumerate() {
                    if e.is_named(coding) {
                        named[i] = Some(named[i].map_or(q, |n| n.max(q)));
                    }
                }
            }
        }
        let mut picked: Vec<(u16, Encoding)> = Encoding::PREFERENCE
            .iter()
            .enumerate()
            .filter(|(_, e)| self.contains(**e))
            .filter_map(|(i, e)| {
                let q = named[i].or(star)?;
                (q > 0).then_some((q, *e))
            })
            .collect();
        // Stable: equal qualities keep the preference order.
        picked.sort_by_key(|&(q, _)| std::cmp::Reverse(q));
        picked.into_iter().map(|(_, e)| e).collect()
    }
}

/// The quality among an item's parameters, in thousandths (1000 when
/// none is given; 0 when it is not a number from 0 to 1).
fn quality<'a>(mut params: impl Iterator<Item = &'a str>) -> u16 {
    let Some(q) = params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("q").then(|| v.trim())
    }) else {
        return 1000;
    };
    match q.parse::<f32>() {
        Ok(q) if (0.0..=1.0).contains(&q) => (q * 1000.0).round() as u16,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::*;

    fn parts_with(accept: &[&'static str]) -> Parts {
        let mut req = http::Request::new(());
        for a in accept {
            req.headers_mut()
                .append(ACCEPT_ENCODING, HeaderValue::from_static(a));
        }
        req.into_parts().0
    }

    fn all() -> Encodings {
        Encodings::default()
            .with(Br)
            .with(Zstd)
            .with(Gzip)
            .with(Deflate)
    }

    #[test]
    fn fs_accept_encoding_gzip_alone() {
        let gzip = Encodings::default().with(Gzip);
        let picks = |a: &[&'static str]| gzip.accepted_by(&parts_with(a));
        assert_eq!(picks(&["gzip"]), [Gzip]);
        assert_eq!(picks(&["br, gzip;q=0.5"]), [Gzip]);
        assert_eq!(picks(&["deflate", "GZIP"]), [Gzip]);
        assert_eq!(picks(&["x-gzip"]), [Gzip]);
        assert_eq!(picks(&["*"]), [Gzip]);
        assert_eq!(picks(&["gzip;q=0"]), []);
        assert_eq!(picks(&["*, gzip;q=0"]), []);
        assert_eq!(picks(&["br"]), []);
        assert_eq!(picks(&[]), []);
        assert_eq!(picks(&["identity;q=1, *;q=0"]), []);
        assert_eq!(picks(&["gzip;q=2"]), []);
        assert_eq!(picks(&["gzip;q=x"]), []);
    }

    #[test]
    fn fs_accept_encoding_order_is_quality_then_preference() {
        let picks = |a: &[&'static str]| all().accepted_by(&parts_with(a));
        assert_eq!(
            picks(&["gzip, deflate, br, zstd"]),
            [Br, Zstd, Gzip, Deflate]
        );
        assert_eq!(picks(&["gzip;q=1, br;q=0.5"]), [Gzip, Br]);
        assert_eq!(
            picks(&["deflate;q=0.9, *;q=0.1"]),
            [Deflate, Br, Zstd, Gzip]
        );
        assert_eq!(picks(&["br;q=0, *"]), [Zstd, Gzip, Deflate]);
        assert_eq!(picks(&["gzip;q=0.001"]), [Gzip]);
        // Only what the service looks for.
        let br_gzip = Encodings::default().with(Gzip).with(Br);
        assert_eq!(br_gzip.accepted_by(&parts_with(&["zstd, gzip"])), [Gzip]);
        assert!(Encodings::default()
            .accepted_by(&parts_with(&["gzip"]))
            .is_empty());
    }

    #[test]
    fn fs_siblings_have_tower_http_extensions() {
        let p = Path::new("a/b.txt");
        assert_eq!(Br.sibling(p), Path::new("a/b.txt.br"));
        assert_eq!(Zstd.sibling(p), Path::new("a/b.txt.zst"));
        assert_eq!(Gzip.sibling(p), Path::new("a/b.txt.gz"));
        assert_eq!(Deflate.sibling(p), Path::new("a/b.txt.zz"));
        assert_eq!(Br.header_value(), "br");
    }
}
