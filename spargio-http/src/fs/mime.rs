//! `Content-Type` from a file name's extension.

use std::path::Path;

use http::HeaderValue;

/// The `Content-Type` for `path`, guessed from its extension with
/// `mime_guess`; `application/octet-stream` when unknown. Text types
/// (`text/*`, and JavaScript and JSON, which are text too) get
/// `; charset=utf-8`.
pub(crate) fn content_type_for(path: &Path) -> HeaderValue {
    let Some(essence) = mime_guess::from_path(path).first_raw() else {
        return HeaderValue::from_static("application/octet-stream");
    };
    let texty = essence.starts_with("text/")
        || essence == "application/javascript"
        || essence == "application/json";
    if texty {
        // `essence` is a registered media type: always a valid value.
        HeaderValue::from_str(&format!("{essence}; charset=utf-8"))
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
    } else {
        HeaderValue::from_static(essence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_content_types() {
        let ct = |p: &str| content_type_for(Path::new(p));
        assert_eq!(ct("index.html"), "text/html; charset=utf-8");
        assert_eq!(ct("a/b/notes.txt"), "text/plain; charset=utf-8");
        assert_eq!(ct("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(ct("data.json"), "application/json; charset=utf-8");
        assert_eq!(ct("img.PNG"), "image/png");
        assert_eq!(ct("archive.unknownext"), "application/octet-stream");
        assert_eq!(ct("README"), "application/octet-stream");
    }
}
