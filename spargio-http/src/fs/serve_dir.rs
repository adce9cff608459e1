//! [`ServeDir`]: serves the files under a directory.

use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::join_all;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use spargio_rt::fs::{File, Metadata};

use super::body::FileBody;
use super::mime::content_type_for;
use super::path::{self, RequestPath};
use super::respond::{self, Opened, ResponseFuture, ServeOptions};
use super::root::ResolvedRoot;

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
/// before the filesystem is touched. The path found must then resolve,
/// symlinks followed, to a place under the canonical root, or the answer
/// is again `404`: a symlink inside the root that points inside it is
/// followed, one that points outside is refused as if the file did not
/// exist. The check costs one `statx` (not following symlinks) per path
/// component, all submitted together on the ring; only a path that does
/// contain a symlink is `canonicalize`d (on the blocking pool), as is the
/// root itself at most once a second (so re-pointing a symlinked root, a
/// deploy, is picked up without a restart). The
/// resolved path is what gets opened, with `O_NOFOLLOW`. (Someone who can
/// swap a checked directory for a symlink between the check and the open
/// could still race it; the root is meant to hold trusted content.)
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
    /// The root with symlinks resolved, looked up again every second: a
    /// symlinked root re-pointed at another directory
    /// (a deploy) is served from there a moment later.
    canonical_root: Arc<ResolvedRoot>,
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
                canonical_root: Arc::default(),
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

/// Paths deeper than this skip the per-component check and go straight
/// to `canonicalize`, so one request cannot queue hundreds of `statx`.
const MAX_FAST_DEPTH: usize = 32;

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
    let target = match confine(&root, &root, &request_path.relative).await {
        Found::Path(p) => p,
        Found::Response(res) => return res,
    };
    let (file, meta) = match respond::open(&target, true).await {
        Ok(opened) => opened,
        Err(e) => return respond::io_error(&e),
    };

    // `name` is what the client asked for: it picks the Content-Type
    // (a symlink `latest` -> `v2.css` is typed by `latest`).
    let (file, meta, target, name) = if meta.is_dir() {
        drop(file);
        if !config.append_index_html {
            return respond::empty(StatusCode::NOT_FOUND);
        }
        if !request_path.trailing_slash {
            return redirect_to_dir(&request_path, &parts);
        }
        let index = match confine(&root, &target, Path::new(INDEX)).await {
            Found::Path(p) => p,
            Found::Response(res) => return res,
        };
        match respond::open(&index, true).await {
            Ok((file, meta)) => (file, meta, index, request_path.relative.join(INDEX)),
            Err(e) => return respond::io_error(&e),
        }
    } else if request_path.trailing_slash {
        // `/file.txt/`: not a directory.
        return respond::empty(StatusCode::NOT_FOUND);
    } else {
        (file, meta, target, request_path.relative)
    };
    if !meta.is_file() {
        return respond::empty(StatusCode::NOT_FOUND);
    }

    let mut opened = Opened {
        file,
        meta,
        content_type: content_type_for(&name),
        gzip: false,
    };
    if config.options.precompressed_gzip && respond::accepts_gzip(&parts) {
        if let Some((file, meta)) = open_gz(&root, &target).await {
            opened.file = file;
            opened.meta = meta;
            opened.gzip = true;
        }
    }
    respond::respond(&parts, opened, &config.options)
}

/// The file a directory request serves.
const INDEX: &str = "index.html";

/// The canonical root (see [`ResolvedRoot`]).
async fn canonical_root(config: &DirConfig) -> io::Result<Arc<Path>> {
    config.canonical_root.get(&config.root).await
}

/// Resolves `base/tail` and checks that it exists and stays under `root`.
/// `root` and `base` are canonical, `base` lies under `root`, and `tail`
/// is relative with plain components only (no `.` or `..`: see
/// [`path::decode`]).
///
/// Fast path: `statx` without following symlinks on every prefix of
/// `base/tail`, all submitted at once on the ring. If none is a symlink,
/// `base/tail` is already canonical and under `root`. Only when one is
/// a symlink (or the path is very deep) does the path go through
/// `canonicalize` on the blocking pool, and the result is checked
/// against `root`.
async fn confine(root: &Path, base: &Path, tail: &Path) -> Found {
    let full = base.join(tail);
    let depth = tail.components().count();
    if depth == 0 {
        return Found::Path(full);
    }
    if depth <= MAX_FAST_DEPTH {
        let mut prefix = base.to_path_buf();
        let prefixes: Vec<PathBuf> = tail
            .components()
            .map(|c| {
                prefix.push(c);
                prefix.clone()
            })
            .collect();
        let stats = join_all(prefixes.iter().map(spargio_rt::fs::symlink_metadata)).await;
        let mut saw_symlink = false;
        for stat in stats {
            match stat {
                Ok(meta) if meta.is_symlink() => {
                    saw_symlink = true;
                    break;
                }
                Ok(_) => {}
                // The first failing prefix (before any symlink) says why.
                Err(e) => return Found::Response(respond::io_error(&e)),
            }
        }
        if !saw_symlink {
            return Found::Path(full);
        }
    }
    match spargio_rt::fs::canonicalize(&full).await {
        Ok(resolved) if resolved.starts_with(root) => Found::Path(resolved),
        // A symlink out of the root: as if it did not exist.
        Ok(_) => Found::Response(respond::empty(StatusCode::NOT_FOUND)),
        Err(e) => Found::Response(respond::io_error(&e)),
    }
}

/// The `.gz` twin of the file being served (`target`, canonical), if it
/// exists under the root and is a regular file.
async fn open_gz(root: &Path, target: &Path) -> Option<(File, Metadata)> {
    let dir = target.parent()?;
    let gz_name = respond::gz_sibling(Path::new(target.file_name()?));
    let Found::Path(gz) = confine(root, dir, &gz_name).await else {
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
