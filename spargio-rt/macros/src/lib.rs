//! Attribute macros for the [`spargio-rt`] async runtime.
//!
//! This crate provides two attribute macros that turn an `async fn` into a
//! plain, synchronous function that starts a spargio runtime, runs the
//! function's body on shard 0 of that runtime, shuts the runtime down and
//! returns the body's output:
//!
//! * [`macro@main`]: for a program's entry point (or any other function);
//! * [`macro@test`]: for `#[test]` functions, with a default of two shards.
//!
//! Do not depend on this crate directly: use the re-exports
//! `spargio_rt::main` and `spargio_rt::test`, which are enabled by the
//! `macros` feature of `spargio-rt` (on by default).
//!
//! The async function may take no argument, or exactly one argument of type
//! `RuntimeHandle`, which receives the handle of the runtime it runs on:
//!
//! ```ignore
//! use spargio_rt::RuntimeHandle;
//!
//! #[spargio_rt::main(shards = 4)]
//! async fn main(handle: RuntimeHandle) {
//!     let task = handle.spawn(async { 6 * 7 });
//!     assert_eq!(task.await.unwrap(), 42);
//! }
//! ```
//!
//! # Options
//!
//! Both macros accept the same comma-separated `key = value` options:
//!
//! | key            | value                   | effect                                                   |
//! |----------------|-------------------------|----------------------------------------------------------|
//! | `shards`       | integer literal, `>= 1` | `RuntimeBuilder::shards` (default: runtime's own for `main`, `2` for `test`) |
//! | `ring_entries` | integer literal, `>= 1` | `RuntimeBuilder::ring_entries` (default: runtime's own)   |
//! | `crate`        | string literal path     | path of the runtime crate (default: `::spargio_rt`)      |
//!
//! # Expansion
//!
//! ```ignore
//! #[spargio_rt::main(shards = 4)]
//! async fn main(handle: spargio_rt::RuntimeHandle) -> Ret { body }
//! ```
//!
//! expands to (modulo hygiene and full paths)
//!
//! ```ignore
//! fn main() -> Ret {
//!     match ::spargio_rt::run_with(
//!         ::spargio_rt::Runtime::builder().shards(4),
//!         move |__handle: ::spargio_rt::RuntimeHandle| async move {
//!             let handle: spargio_rt::RuntimeHandle = __handle;
//!             body
//!         },
//!     ) {
//!         Ok(v) => v,
//!         Err(e) => {
//!             eprintln!("error: spargio runtime failed: {}", e);
//!             std::process::exit(1)
//!         }
//!     }
//! }
//! ```
//!
//! (On a function not named `main`, and in `#[spargio_rt::test]`, the
//! `Err` arm panics with the same message instead.)
//!
//! The body runs on shard 0 and need not be `Send`; its output is handed
//! back to the calling thread, so the return type must be `Send + 'static`.
//!
//! Except for a program's `main` (a function named `main`) and for tests
//! that return something: there the body becomes a nested `async fn`, and
//! its output is reported on shard 0 with `std::process::Termination`
//! (`Error: {err:?}` on stderr for an `Err`, as std does for a plain
//! `main`). Only the resulting `ExitCode` crosses threads, so the output
//! need not be `Send`: `Result<(), Box<dyn Error>>` works.
//!
//! A `return` in the body returns from the async block, whose output is the
//! function's return type, so it behaves like a `return` from the function.
//! Attributes (doc comments, `#[allow]`, ...) and the visibility of the
//! function are kept.
//!
//! On an associated function (in an `impl`): a body that returns
//! something becomes a nested `async fn` (so a `return` in it is coerced
//! to the declared type, as in any function), which cannot see the impl
//! around it; so a body or return type that names `Self` stays an `async`
//! block inside the function instead, and can use `Self` and the impl's
//! generics (a `return` there is not coerced: write
//! `return Err(Box::new(e) as Box<dyn Error>)`). A body that uses the
//! impl's generic parameters without naming `Self` can name them through
//! `Self` (`Self::make()`), or return `()`.
//!
//! [`spargio-rt`]: https://docs.rs/spargio-rt

#![warn(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Ident, Literal, Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, FnArg, ItemFn, Lit, LitStr, PatType, Path, ReturnType, Token};

/// Runs an `async fn` to completion on a new spargio runtime.
///
/// The function becomes a synchronous function with the same name, return
/// type, visibility and attributes. Calling it builds a runtime with
/// `Runtime::builder()` (plus the options given to the attribute), runs the
/// body on shard 0 with `spargio_rt::run_with`, shuts the runtime down and
/// returns the body's output. A panic in the body is resumed on the caller.
/// If the runtime cannot be started (for example because `io_uring` is not
/// available), or shuts down before the body finishes (a shard's event
/// loop failed), a program's `main` prints
/// `error: spargio runtime failed: <error>` on stderr and exits with
/// code 1; a function with another name panics with
/// `spargio runtime failed: <error>`.
///
/// The function may take no argument or one argument of type
/// `RuntimeHandle` (with any pattern). It must be `async` and must not be
/// generic. The body runs on a shard thread and need not be `Send`.
///
/// On a program's `main` the output is reported on shard 0 the way std
/// reports a plain `main`'s (any `std::process::Termination` type; an
/// `Err` prints `Error: {err:?}` and exits with code 1), and the generated
/// `main` returns the `ExitCode`: so `Result<(), Box<dyn Error>>` works.
/// On a function with another name the output is handed back to the
/// caller, so it must be `Send + 'static` (a boxed error must then be
/// `Box<dyn Error + Send + Sync>`).
///
/// # Options
///
/// * `shards = N`: number of shards (`N >= 1`); default: the runtime's default.
/// * `ring_entries = N`: `io_uring` submission queue entries per shard (`N >= 1`).
/// * `crate = "path"`: path of the runtime crate, if it is not `::spargio_rt`.
///
/// # Examples
///
/// ```ignore
/// #[spargio_rt::main]
/// async fn main() {
///     let answer = spargio_rt::spawn(async { 6 * 7 }).await.unwrap();
///     println!("{answer}");
/// }
/// ```
///
/// With options, a handle argument and a `Result` return type:
///
/// ```ignore
/// use spargio_rt::RuntimeHandle;
///
/// #[spargio_rt::main(shards = 4, ring_entries = 512)]
/// async fn main(handle: RuntimeHandle) -> std::io::Result<()> {
///     assert_eq!(handle.shard_count(), 4);
///     Ok(())
/// }
/// ```
///
/// The macro works on any function name, so it can also wrap helpers:
///
/// ```ignore
/// #[spargio_rt::main(shards = 3)]
/// async fn count_shards(h: spargio_rt::RuntimeHandle) -> usize {
///     h.shard_count()
/// }
///
/// assert_eq!(count_shards(), 3);
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Main, args.into(), item.into()).into()
}

/// Runs an `async fn` test to completion on a new spargio runtime.
///
/// Like [`macro@main`], but the generated function is also marked
/// `#[test]`, and the runtime gets two shards unless `shards = N` says
/// otherwise. The test keeps its own name; other attributes such as
/// `#[should_panic]` or `#[ignore]` are kept. Do not add `#[test]` yourself.
///
/// The test may take no argument or one `RuntimeHandle` argument, and may
/// return `()` or any type a `#[test]` function may return, such as
/// `Result<(), E>` or `Result<(), Box<dyn Error>>` (the result is reported
/// on shard 0, so it need not be `Send`; an `Err` fails the test).
///
/// # Options
///
/// * `shards = N`: number of shards (`N >= 1`); default: `2`.
/// * `ring_entries = N`: `io_uring` submission queue entries per shard (`N >= 1`).
/// * `crate = "path"`: path of the runtime crate, if it is not `::spargio_rt`.
///
/// # Examples
///
/// ```ignore
/// #[spargio_rt::test]
/// async fn spawns() {
///     assert_eq!(spargio_rt::spawn(async { 1 + 1 }).await.unwrap(), 2);
/// }
///
/// #[spargio_rt::test(shards = 4)]
/// async fn four_shards(handle: spargio_rt::RuntimeHandle) -> Result<(), String> {
///     if handle.shard_count() != 4 {
///         return Err("wrong shard count".into());
///     }
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Test, args.into(), item.into()).into()
}

/// Which attribute is being expanded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "main",
            Kind::Test => "test",
        }
    }
}

/// Options parsed from the attribute's arguments.
struct Options {
    krate: Option<Path>,
    shards: Option<(usize, Span)>,
    ring_entries: Option<(u32, Span)>,
}

/// Shared entry point: parses everything, expands, or reports errors.
fn entry(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(err) => {
            let msg = format!(
                "`#[spargio_rt::{}]` can only be applied to an `async fn`",
                kind.name()
            );
            let mut top = syn::Error::new(Span::call_site(), msg);
            top.combine(err);
            let mut out = top.to_compile_error();
            out.extend(item);
            return out;
        }
    };

    let options = parse_options(args);
    let checked = check_fn(kind, &func);
    match (options, checked) {
        (Ok(options), Ok(handle_arg)) => expand(kind, &options, &func, handle_arg),
        (options, checked) => {
            let mut errors: Option<syn::Error> = None;
            for err in [options.err(), checked.err()].into_iter().flatten() {
                match errors.as_mut() {
                    Some(all) => all.combine(err),
                    None => errors = Some(err),
                }
            }
            // Emit the function's signature next to the errors so that uses
            // of it do not produce a cascade of unrelated "not found" errors;
            // made synchronous with an empty body (an `async fn main`, or a
            // `main` taking the handle, would add rustc's own error about
            // `main` to ours).
            let mut out = errors
                .map(syn::Error::into_compile_error)
                .unwrap_or_default();
            out.extend(stand_in(func).into_token_stream());
            out
        }
    }
}

/// What a function whose attribute has errors expands to beside them: its
/// signature, not `async`, without parameters if it is `main`, and a body
/// that only panics.
fn stand_in(mut func: ItemFn) -> ItemFn {
    func.sig.asyncness = None;
    if func.sig.ident == "main" {
        func.sig.inputs.clear();
    }
    func.block = Box::new(syn::parse_quote!({
        ::core::panic!("this function's spargio_rt attribute has errors")
    }));
    func
}

/// Parses `shards = N, ring_entries = N, crate = "path"`.
fn parse_options(args: TokenStream2) -> syn::Result<Options> {
    let mut options = Options {
        krate: None,
        shards: None,
        ring_entries: None,
    };
    let mut errors: Option<syn::Error> = None;
    let mut push = |err: syn::Error| match errors.as_mut() {
        Some(all) => all.combine(err),
        None => errors = Some(err),
    };

    let parser = syn::meta::parser(|meta| {
        let key_span = meta.path.span();
        let known = ["shards", "ring_entries", "crate"]
            .iter()
            .any(|key| meta.path.is_ident(key));
        if known && !meta.input.peek(Token![=]) {
            let name = meta.path.to_token_stream().to_string();
            let example = if name == "crate" { "\"my_rt\"" } else { "4" };
            return Err(syn::Error::new(
                key_span,
                format!("`{name}` expects a value, e.g. `{name} = {example}`"),
            ));
        }
        if meta.path.is_ident("shards") {
            let value: Expr = meta.value()?.parse()?;
            if options.shards.is_some() {
                push(syn::Error::new(key_span, "duplicate option `shards`"));
            }
            match positive_int::<usize>(&value, "shards") {
                Ok(n) => options.shards = Some((n, value.span())),
                Err(err) => push(err),
            }
        } else if meta.path.is_ident("ring_entries") {
            let value: Expr = meta.value()?.parse()?;
            if options.ring_entries.is_some() {
                push(syn::Error::new(key_span, "duplicate option `ring_entries`"));
            }
            match positive_int::<u32>(&value, "ring_entries") {
                Ok(n) => options.ring_entries = Some((n, value.span())),
                Err(err) => push(err),
            }
        } else if meta.path.is_ident("crate") {
            let value: Expr = meta.value()?.parse()?;
            if options.krate.is_some() {
                push(syn::Error::new(key_span, "duplicate option `crate`"));
            }
            match &value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => match parse_crate_path(s) {
                    Ok(path) => options.krate = Some(path),
                    Err(err) => push(err),
                },
                other => push(syn::Error::new_spanned(
                    other,
                    "`crate` expects a string literal path, e.g. `crate = \"my_rt\"`",
                )),
            }
        } else {
            let name = meta.path.to_token_stream().to_string().replace(' ', "");
            return Err(meta.error(format!(
                "unknown option `{name}`; expected `shards`, `ring_entries` or `crate`"
            )));
        }
        Ok(())
    });

    if let Err(err) = syn::parse::Parser::parse2(parser, args) {
        push(err);
    }
    match errors {
        Some(err) => Err(err),
        None => Ok(options),
    }
}

/// Parses an integer literal option that must be at least 1.
fn positive_int<N>(value: &Expr, key: &str) -> syn::Result<N>
where
    N: std::str::FromStr + PartialEq + From<u8>,
    N::Err: std::fmt::Display,
{
    let lit = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => lit,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                format!("`{key}` expects a positive integer literal, e.g. `{key} = 4`"),
            ))
        }
    };
    let n: N = lit
        .base10_parse()
        .map_err(|err| syn::Error::new(lit.span(), format!("invalid value for `{key}`: {err}")))?;
    if n == N::from(0) {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{key}` must be at least 1"),
        ));
    }
    Ok(n)
}

/// Parses the value of `crate = "..."` as a path, keeping the literal's span.
fn parse_crate_path(s: &LitStr) -> syn::Result<Path> {
    let tokens: TokenStream2 = s.value().parse().map_err(|_| {
        syn::Error::new(s.span(), "`crate` expects a path, e.g. `crate = \"my_rt\"`")
    })?;
    let tokens = respan(tokens, s.span());
    syn::parse2::<Path>(tokens)
        .map_err(|_| syn::Error::new(s.span(), "`crate` expects a path, e.g. `crate = \"my_rt\"`"))
}

/// Gives every token in `tokens` the span `span`.
fn respan(tokens: TokenStream2, span: Span) -> TokenStream2 {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let proc_macro2::TokenTree::Group(g) = &tt {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tt = proc_macro2::TokenTree::Group(group);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

/// Checks the function's shape; returns its handle argument, if any.
fn check_fn(kind: Kind, func: &ItemFn) -> syn::Result<Option<&PatType>> {
    let sig = &func.sig;
    let mut errors: Vec<syn::Error> = Vec::new();

    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            format!(
                "`#[spargio_rt::{}]` requires an `async fn`; add `async` before `fn`",
                kind.name()
            ),
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "the function cannot be `const`",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "the function cannot be `unsafe`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "the function cannot have an `extern` ABI",
        ));
    }
    // `Generics` prints its parameters only (no `where` clause, and nothing
    // at all without parameters), so a `where` clause alone is pointed at
    // by itself.
    let generic: Option<&dyn quote::ToTokens> = match &sig.generics.where_clause {
        _ if !sig.generics.params.is_empty() => Some(&sig.generics),
        Some(where_clause) => Some(where_clause),
        None => None,
    };
    if let Some(generic) = generic {
        errors.push(syn::Error::new_spanned(
            generic,
            "the function cannot be generic (no type, lifetime or const parameters, no `where` clause)",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "the function cannot be variadic",
        ));
    }
    if kind == Kind::Test {
        for attr in &func.attrs {
            if attr.path().is_ident("test") {
                errors.push(syn::Error::new_spanned(
                    attr,
                    "`#[spargio_rt::test]` already adds `#[test]`; remove this attribute",
                ));
            }
        }
    }

    let mut handle_arg = None;
    for (index, arg) in sig.inputs.iter().enumerate() {
        match arg {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                "the function cannot take `self`; it may only take one `RuntimeHandle` argument",
            )),
            FnArg::Typed(_) if index > 0 => errors.push(syn::Error::new_spanned(
                arg,
                "too many arguments: the function may take at most one argument, a `RuntimeHandle`",
            )),
            FnArg::Typed(pat_type) => handle_arg = Some(pat_type),
        }
    }

    let mut errors = errors.into_iter();
    match errors.next() {
        None => Ok(handle_arg),
        Some(mut first) => {
            for err in errors {
                first.combine(err);
            }
            Err(first)
        }
    }
}

/// Generates the synchronous function.
fn expand(
    kind: Kind,
    options: &Options,
    func: &ItemFn,
    handle_arg: Option<&PatType>,
) -> TokenStream2 {
    let krate = options
        .krate
        .as_ref()
        .map_or_else(|| quote!(::spargio_rt), ToTokens::to_token_stream);

    let shards = match (options.shards, kind) {
        (Some((n, span)), _) => Some((n, span)),
        (None, Kind::Test) => Some((2, Span::call_site())),
        (None, Kind::Main) => None,
    };
    let mut builder = quote!(#krate::Runtime::builder());
    if let Some((n, span)) = shards {
        let mut lit = Literal::usize_unsuffixed(n);
        lit.set_span(span);
        builder.extend(quote_spanned!(span=> .shards(#lit)));
    }
    if let Some((n, span)) = options.ring_entries {
        let mut lit = Literal::u32_unsuffixed(n);
        lit.set_span(span);
        builder.extend(quote_spanned!(span=> .ring_entries(#lit)));
    }

    // Mixed-site hygiene: the user's body can neither see nor shadow these.
    let handle = Ident::new("__spargio_handle", Span::mixed_site());
    let output = Ident::new("__spargio_output", Span::mixed_site());
    let error = Ident::new("__spargio_error", Span::mixed_site());

    let (param, binding) = match handle_arg {
        Some(PatType { attrs, pat, ty, .. }) => {
            // Same hygiene, but a type mismatch is reported at the user's type.
            let at_ty = Ident::new("__spargio_handle", Span::mixed_site().located_at(ty.span()));
            (
                quote!(#handle),
                quote! {
                    #[allow(clippy::no_effect_underscore_binding)]
                    #(#attrs)*
                    let #pat: #ty = #at_ty;
                },
            )
        }
        None => (quote!(_), TokenStream2::new()),
    };

    // The only bounds of `run_with` that user code can break are
    // `T: Send + 'static` on the output, so report them at the return type.
    let run_with_span = match &func.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => func.sig.ident.span(),
    };
    let run_with = respan(quote!(#krate::run_with), run_with_span);

    // syn keeps a body's inner attributes (`#![allow(..)]` as its first
    // line) with the function's own: they go back inside, at the top of
    // the generated body, where they cover the whole of it.
    let (inner_attrs, attrs): (Vec<_>, Vec<_>) = func
        .attrs
        .iter()
        .partition(|a| matches!(a.style, syn::AttrStyle::Inner(_)));
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let ret = &func.sig.output;
    let test_attr = match kind {
        Kind::Test => quote!(#[::core::prelude::v1::test]),
        Kind::Main => TokenStream2::new(),
    };

    // The body's statements are spliced (not nested as a block) so that a
    // single-expression body does not trip the `unused_braces` lint.
    let stmts = &func.block.stmts;

    // A program's `main` and a test report their output on shard 0 and
    // hand back only the `ExitCode`, as std's `main` and libtest would
    // report it: so the output itself need not be `Send`, and
    // `Result<(), Box<dyn Error>>` works as it does on a plain `main`.
    // The body becomes a nested `async fn` with the declared return type.
    // Any other function with a return type gets the nested `async fn`
    // too, so its body is checked against that type (a bare `async` block
    // infers its output from the body alone, and `return Err(Box::new(e))`
    // would not coerce to `Box<dyn Error>`); its output comes back from
    // `run_with` as it is.
    let reported = kind == Kind::Test || ident == "main";
    // An explicit `-> ()` is no return type: reported, it would make a
    // test return `ExitCode`, which `#[should_panic]` refuses.
    let unit = |ty: &syn::Type| matches!(ty, syn::Type::Tuple(t) if t.elems.is_empty());
    // A body that names `Self` (a method's) cannot be a nested `async fn`
    // (an inner item sees nothing of the impl around it): it stays an
    // `async` block inside the function, passed through a helper that
    // names its output, so its type is checked (though a `return` in it
    // is not coerced to the declared type).
    let names_self =
        names_self(func.sig.output.to_token_stream()) || names_self(func.block.to_token_stream());
    // For a body with a return type: a helper item and the expression of
    // the body's future.
    let typed_body = match &func.sig.output {
        ReturnType::Type(_, ret_ty) if !unit(ret_ty) && names_self => {
            let typed = Ident::new("__spargio_typed", Span::mixed_site());
            let body_item = quote! {
                fn #typed<T, F: ::core::future::Future<Output = T>>(body: F) -> F {
                    body
                }
            };
            let fut = quote! {
                #typed::<#ret_ty, _>(async move {
                    #binding
                    #(#stmts)*
                })
            };
            Some((body_item, fut))
        }
        ReturnType::Type(_, ret_ty) if !unit(ret_ty) => {
            let body_fn = Ident::new("__spargio_body", Span::mixed_site());
            let (fn_param, call_arg) = match handle_arg {
                Some(PatType { attrs, pat, ty, .. }) => {
                    (quote!(#(#attrs)* #pat: #ty), quote!(#handle))
                }
                None => (TokenStream2::new(), TokenStream2::new()),
            };
            let body_item = quote! {
                async fn #body_fn(#fn_param) -> #ret_ty {
                    #(#stmts)*
                }
            };
            Some((body_item, quote!(#body_fn(#call_arg))))
        }
        ReturnType::Default | ReturnType::Type(..) => None,
    };
    let (ret, body_item, call) = match typed_body {
        Some((body_item, fut)) if reported => {
            let call = quote! {
                #krate::run_with(#builder, move |#param: #krate::RuntimeHandle| async move {
                    ::std::process::Termination::report(#fut.await)
                })
            };
            (quote!(-> ::std::process::ExitCode), body_item, call)
        }
        Some((body_item, fut)) => {
            let closure = quote! {
                move |#param: #krate::RuntimeHandle| async move { #fut.await }
            };
            let call = quote_spanned!(run_with_span=> #run_with(#builder, #closure));
            (ret.to_token_stream(), body_item, call)
        }
        None => {
            let closure = quote! {
                move |#param: #krate::RuntimeHandle| async move {
                    #binding
                    #(#stmts)*
                }
            };
            let call = quote_spanned!(run_with_span=> #run_with(#builder, #closure));
            (ret.to_token_stream(), TokenStream2::new(), call)
        }
    };

    // A program's `main` whose runtime cannot start (no io_uring, say)
    // reports that as a program does: the error on stderr and exit code 1,
    // not a panic with a backtrace hint. A test or another function panics,
    // so its caller (libtest, or the program) sees the failure.
    let failed = if kind == Kind::Main && ident == "main" {
        quote! {
            ::std::eprintln!("error: spargio runtime failed: {}", #error);
            ::std::process::exit(1)
        }
    } else {
        quote!(::core::panic!("spargio runtime failed: {}", #error))
    };

    quote! {
        #test_attr
        #(#attrs)*
        #vis fn #ident() #ret {
            #(#inner_attrs)*
            #body_item
            match #call {
                ::core::result::Result::Ok(#output) => #output,
                ::core::result::Result::Err(#error) => {
                    #failed
                }
            }
        }
    }
}

/// Whether `tokens` name `Self` anywhere (in nested groups too).
fn names_self(tokens: TokenStream2) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "Self",
        proc_macro2::TokenTree::Group(g) => names_self(g.stream()),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[::core::prelude::v1::test]
    fn a_bad_option_leaves_no_async_main_behind() {
        let out = entry(
            Kind::Main,
            quote!(shard = 4),
            quote!(
                async fn main(h: RuntimeHandle) {
                    h.shard_count();
                }
            ),
        )
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("fn main ()"), "{out}");
        assert!(!out.contains("async"), "{out}");
        assert!(!out.contains("shard_count"), "{out}");
    }
}
