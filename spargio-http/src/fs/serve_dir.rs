//! [`ServeDir`]: serves the files under a directory.

use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::request::Parts;
use http::{Request, Response, StatusCode};

use super::body::FileBody;
use super::mime::content_type_for;
use super::path::{self, RequestPath};
use super::respond::{self, Opened, ResponseFuture, ServeOptions};

/// A tower service that serves the files under a root directory, for
/// `GET` and `HEAD` requests.
///
/// The request path (its query is ignored) is percent-decoded and joined
/// onto the root. A path ending in `/` names a directory and serves its
/// `index.html` (see
/// [`append_index_html_on_directories`](Self::append_index_html_on_directories));
/// a directory asked for without the slash is redirected to it. Responses
/// carry `Content-Type` (from the extension), `Content-Length`,
/// `Accept-Ranges`, `ETag` and `Last-Modified`, and honour conditional and
/// range requests; see the [module docs](super) for the status codes.
///
/// Path safety: a request whose decoded path has a `.` or `..` segment,
/// or a segment holding `/` (`%2f`), `\` (`%5c`) or NUL, gets `404`
/// before the filesystem is touched. The file found is then canonicalized
/// (symlinks resolved) and must lie under the canonical root, or the
/// answer is again `404`: a symlink inside the root that points inside it
/// is followed, one that points outside is refused as if the file did not
/// exist. The canonical path is what gets opened (with `O_NOFOLLOW`).
///
/// ```no_run
/// use http::Request;
/// use http_body_util::BodyExt;
/// use spargio_http::fs::ServeDir;
/// use tower_service::Service;
///
/// spargio_rt::run(|_| async {
///     let mut assets = ServeDir::new("public").precompressed_gzip();
///     let req = Request::get("/css/site.css").body(()).unwrap();
///     let res = assets.call(req).await.unwrap();
///     println!("{} {:?}", res.status(), res.headers());
///     let bytes = res.into_body().collect().await?.to_bytes();
///     println!("{} bytes", bytes.len());
///     std::io::Result::Ok(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ServeDir {
    config: Arc<DirConfig>,
}

#[derive(Debug, Clone)]
struct DirConfig {
    root: PathBuf,
    /// The root with symlinks resolved, computed by the first request that
    /// finds the root (and then kept: moving the root away later is not
    /// noticed).
    canonical_root: Arc<OnceLock<PathBuf>>,
    append_index_html: bool,
    options: ServeOptions,
}

impl ServeDir {
    /// Serves the files under `root` (relative roots are taken from the
    /// current directory when the first request arrives).
    pub fn new(root: impl AsRef<Path>) -> Self {
        ServeDir {
            config: Arc::new(DirConfig {
                root: root.as_ref().to_owned(),
                canonical_root: Arc::new(OnceLock::new()),
                append_index_html: true,
                options: ServeOptions::default(),
            }),
        }
    }

    /// Whether a path ending in `/` serves the directory's `index.html`
    /// (default `true`). With `true`, a directory asked for without the
    /// trailing slash (`/docs`) is answered `308 Permanent Redirect` with
    /// the relative `Location: ./docs/` (query kept), which resolves
    /// correctly even when the service is mounted under a prefix. With
    /// `false`, directories are `404`.
    pub fn append_index_html_on_directories(mut self, append: bool) -> Self {
        Arc::make_mut(&mut self.config).append_index_html = append;
        self
    }

    /// Serves `<file>.gz` instead of `<file>`, with `Content-Encoding:
    /// gzip`, when the client accepts gzip and that file exists (it must
    /// pass the same root check). `Content-Type` stays the original
    /// file's, and every response gets `Vary: accept-encoding`. Ranges and
    /// validators then apply to the compressed file.
    pub fn precompressed_gzip(mut self) -> Self {
        Arc::make_mut(&mut self.config).options.precompressed_gzip = true;
        self
    }

    /// How many bytes each read of a response body asks for (default
    /// [`DEFAULT_CHUNK_SIZE`](super::DEFAULT_CHUNK_SIZE), 64 KiB).
    pub fn with_buf_chunk_size(mut self, chunk_size: usize) -> Self {
        Arc::make_mut(&mut self.config).options.chunk_size = chunk_size.max(1);
        self
    }

    /// The root directory, as given.
    pub fn root(&self) -> &Path {
        &self.config.root
    }
}

impl<B: Send + 'static> tower_service::Service<Request<B>> for ServeDir {
    type Response = Response<FileBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        let (parts, _body) = req.into_parts();
        ResponseFuture::new(serve(Arc::clone(&self.config), parts))
    }
}

/// Where a request leads under the canonical root.
enum Found {
    /// A path that exists and stays under the root, canonical.
    Path(PathBuf),
    /// The answer is already known (missing, escapes the root, error).
    Response(Response<FileBody>),
}

async fn serve(config: Arc<DirConfig>, parts: Parts) -> Response<FileBody> {
    if !respond::method_allowed(&parts.method) {
        return respond::method_not_allowed();
    }
    let Some(request_path) = path::decode(parts.uri.path()) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    let root = match canonical_root(&config).await {
        Ok(root) => root,
        Err(e) => return respond::io_error(&e),
    };
    let requested = config.root.join(&request_path.relative);
    let target = match confine(&root, &requested).await {
        Found::Path(p) => p,
        Found::Response(res) => return res,
    };
    let (file, meta) = match respond::open(&target, true).await {
        Ok(opened) => opened,
        Err(e) => return respond::io_error(&e),
    };

    let (file, meta, requested, target) = if meta.is_dir() {
        drop(file);
        if !config.append_index_html {
            return respond::empty(StatusCode::NOT_FOUND);
        }
        if !request_path.trailing_slash {
            return redirect_to_dir(&request_path, &parts);
        }
        let requested = requested.join("index.html");
        let target = match confine(&root, &requested).await {
            Found::Path(p) => p,
            Found::Response(res) => return res,
        };
        match respond::open(&target, true).await {
            Ok((file, meta)) => (file, meta, requested, target),
            Err(e) => return respond::io_error(&e),
        }
    } else if request_path.trailing_slash {
        // `/file.txt/`: not a directory.
        return respond::empty(StatusCode::NOT_FOUND);
    } else {
        (file, meta, requested, target)
    };
    drop(target);
    if !meta.is_file() {
        return respond::empty(StatusCode::NOT_FOUND);
    }

    let content_type = content_type_for(&requested);
    let mut opened = Opened {
        file,
        meta,
        content_type,
        gzip: false,
    };
    if config.options.precompressed_gzip && respond::accepts_gzip(&parts) {
        if let Some((file, meta)) = open_gz(&root, &requested).await {
            opened.file = file;
            opened.meta = meta;
            opened.gzip = true;
        }
    }
    respond::respond(&parts, opened, &config.options)
}

/// The canonical root, computed once.
async fn canonical_root(config: &DirConfig) -> io::Result<PathBuf> {
    if let Some(root) = config.canonical_root.get() {
        return Ok(root.clone());
    }
    let root = spargio_rt::fs::canonicalize(&config.root).await?;
    Ok(config.canonical_root.get_or_init(|| root).clone())
}

/// Resolves `path` and checks it stays under `root` (both canonical).
async fn confine(root: &Path, path: &Path) -> Found {
    match spargio_rt::fs::canonicalize(path).await {
        Ok(resolved) if resolved.starts_with(root) => Found::Path(resolved),
        // A symlink out of the root: as if it did not exist.
        Ok(_) => Found::Response(respond::empty(StatusCode::NOT_FOUND)),
        Err(e) => Found::Response(respond::io_error(&e)),
    }
}

/// The `.gz` sibling of `requested`, if it exists under the root and is a
/// regular file.
async fn open_gz(
    root: &Path,
    requested: &Path,
) -> Option<(spargio_rt::fs::File, spargio_rt::fs::Metadata)> {
    let Found::Path(gz) = confine(root, &respond::gz_sibling(requested)).await else {
        return None;
    };
    let (file, meta) = respond::open(&gz, true).await.ok()?;
    meta.is_file().then_some((file, meta))
}

/// `308` to the same path with a trailing slash, as a relative reference
/// (`./name/`) so it also works under a path prefix.
fn redirect_to_dir(request_path: &RequestPath, parts: &Parts) -> Response<FileBody> {
    let Some(last) = &request_path.last_raw_segment else {
        // Only `/` has no segment, and it ends in a slash.
        return respond::empty(StatusCode::NOT_FOUND);
    };
    let mut location = format!("./{last}/");
    if let Some(query) = parts.uri.query() {
        location.push('?');
        location.push_str(query);
    }
    respond::redirect(&location)
}
