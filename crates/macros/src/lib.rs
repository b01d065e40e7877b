//! `#[cached]`: memoize an `async fn` through a `cache_loading::Loader`, so
//! that single-flight, fail-safe, timeouts, jitter and eager refresh come
//! with it.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use cache_loading::{LoadError, Loader};
//! use cache_macros::cached;
//!
//! #[derive(Debug)]
//! struct DbError;
//!
//! #[derive(Clone)]
//! struct Catalogue { loader: Loader<DbError>, db_calls: Arc<AtomicUsize> }
//!
//! impl Catalogue {
//!     #[cached(loader = self.loader, key = "product:{id}", ttl = "5m")]
//!     async fn product_name(&self, id: u64) -> Result<String, DbError> {
//!         self.db_calls.fetch_add(1, Ordering::SeqCst); // the database, on a miss only
//!         Ok(format!("product {id}"))
//!     }
//! }
//!
//! # let mut cache = cache_port::MockCache::new(); // any adapter in production
//! # let stored = Arc::new(std::sync::Mutex::new(None));
//! # let (read, write) = (Arc::clone(&stored), Arc::clone(&stored));
//! # cache.expect_get().returning(move |_| Ok(read.lock().unwrap().clone()));
//! # cache.expect_set().returning(move |_, v, _| { *write.lock().unwrap() = Some(v); Ok(()) });
//! let catalogue = Catalogue { loader: Loader::new(Arc::new(cache)), db_calls: Arc::default() };
//! let name: Result<String, LoadError<DbError>> = catalogue.product_name(7).await;
//! assert_eq!(name.unwrap(), "product 7");
//! assert_eq!(catalogue.product_name(7).await.unwrap(), "product 7"); // from the cache
//! assert_eq!(catalogue.db_calls.load(Ordering::SeqCst), 1);
//! # });
//! ```
//!
//! (A runnable example on moka and Redis: `tests/cached_attribute.rs` of
//! the workspace, and docs/KEYSPACES.md.)
//!
//! The arguments:
//! - `loader = <expr>` (required): a `Loader<E>`, or a reference to one;
//!   `E` is the function's error type. In a method it may use `self`.
//! - `key = "<format string>"` (required): the cache key, a `format!`
//!   string whose `{names}` are the function's arguments (each placeholder
//!   is checked against them at compile time).
//! - `ttl = "<duration>"` (optional): `500ms`, `30s`, `5m`, `2h`, `1d`
//!   (checked at compile time); the loader's default otherwise.
//! - `options = <expr>` (optional): a `LoadOptions` for every call (fail-safe,
//!   timeouts); `ttl`, when given too, overrides its TTL.
//!
//! What the expansion does: the function's body moves into a private
//! function `__<name>_uncached` (a method of the same impl for a method);
//! the function itself builds the key, then calls
//! `Loader::get_or_load_with` with a closure that calls the body. Because
//! the loader may finish a load in the background (soft timeouts, eager
//! refresh), the closure owns what it uses: the arguments (`Clone + Send +
//! 'static`: owned types such as `u64`, `String`) and, in a method, a clone
//! of `self` (`&self` only; `Self: Clone + Send + Sync + 'static`, as a
//! service holding `Arc`s is). The function's error type `E` becomes
//! `cache_loading::LoadError<E>`: a failed load is shared by every caller of
//! the flight (`LoadError::Load(Arc<E>)`), and the cache's failures and the
//! hard timeout are errors of their own.
//!
//! The caller's crate depends on `cache-loading` (the expansion names
//! `::cache_loading`) and its value type is `Serialize + DeserializeOwned`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Expr, FnArg, GenericArgument, ItemFn, Lit, Meta, Pat, PathArguments, ReturnType, Token, Type,
};

/// Memoizes an `async fn` returning `Result<T, E>` through a
/// `cache_loading::Loader<E>`; see the crate's documentation.
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item2: TokenStream2 = item.clone().into();
    match expand(attr.into(), item2.clone()) {
        Ok(tokens) => tokens.into(),
        // The function is kept as written beside the error, so that the
        // error is the only one the user sees.
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #item2).into()
        }
    }
}

/// The attribute's arguments.
struct Args {
    loader: Expr,
    key: syn::LitStr,
    ttl: Option<(u64, Span)>,
    options: Option<Expr>,
}

fn parse_args(attr: TokenStream2) -> syn::Result<Args> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr.clone())?;
    let (mut loader, mut key, mut ttl, mut options) = (None, None, None, None);
    for meta in metas {
        let Meta::NameValue(nv) = meta else {
            return Err(syn::Error::new(
                meta.span(),
                "expected `name = value`: #[cached(loader = <expr>, key = \"...\", ttl = \"5m\")]",
            ));
        };
        let name = nv
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let seen = match name.as_str() {
            "loader" => loader.replace(nv.value.clone()).is_some(),
            "options" => options.replace(nv.value.clone()).is_some(),
            "key" => key.replace(string(&nv.value, "key")?).is_some(),
            "ttl" => {
                let text = string(&nv.value, "ttl")?;
                ttl.replace((duration_ms(&text)?, text.span())).is_some()
            }
            _ => {
                return Err(syn::Error::new(
                    nv.path.span(),
                    format!(
                        "unknown argument `{}`: #[cached] takes loader, key, ttl and options",
                        nv.path.to_token_stream()
                    ),
                ))
            }
        };
        if seen {
            return Err(syn::Error::new(
                nv.path.span(),
                format!("`{name}` is given twice"),
            ));
        }
    }
    let missing = |what: &str, example: &str| {
        syn::Error::new(
            if attr.is_empty() {
                Span::call_site()
            } else {
                attr.span()
            },
            format!("#[cached] needs `{what}`, e.g. #[cached({example})]"),
        )
    };
    Ok(Args {
        loader: loader
            .ok_or_else(|| missing("loader", "loader = self.loader, key = \"product:{id}\""))?,
        key: key.ok_or_else(|| missing("key", "loader = self.loader, key = \"product:{id}\""))?,
        ttl,
        options,
    })
}

fn string(value: &Expr, what: &str) -> syn::Result<syn::LitStr> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{what}` takes a string literal"),
        )),
    }
}

/// `500ms`, `30s`, `5m`, `2h`, `1d` in milliseconds; anything else is an
/// error on the literal.
fn duration_ms(text: &syn::LitStr) -> syn::Result<u64> {
    let value = text.value();
    let digits = value.trim().bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = value.trim().split_at(digits);
    let per = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => 0,
    };
    match number.parse::<u64>().ok().and_then(|n| n.checked_mul(per)) {
        Some(ms) if ms > 0 => Ok(ms),
        _ => Err(syn::Error::new(
            text.span(),
            format!(
                "bad ttl {value:?}: a positive whole number of ms, s, m, h or d, such as \"5m\""
            ),
        )),
    }
}

/// The `{names}` of a format string (`{{` escapes skipped, `{name:?}`
/// formats kept to their name).
fn placeholders(key: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '{' => {
                let inside: String = chars.by_ref().take_while(|&c| c != '}').collect();
                names.push(inside.split(':').next().unwrap_or("").trim().to_owned());
            }
            _ => {}
        }
    }
    names
}

/// `T` and `E` of a `Result<T, E>` return type.
fn result_types(output: &ReturnType) -> Option<(Type, Type)> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let Type::Path(path) = &**ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    });
    Some((types.next()?, types.next()?))
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let args = parse_args(attr)?;
    let function: ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            "#[cached] goes on an `async fn` returning `Result<T, E>`",
        )
    })?;
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "#[cached] goes on an `async fn`: the loader awaits it",
        ));
    }
    let Some((value, error)) = result_types(&sig.output) else {
        return Err(syn::Error::new(
            sig.output.span(),
            "#[cached] needs a return type `Result<T, E>`: the loader caches `T` and shares `E`",
        ));
    };
    let mut receiver = false;
    let mut names = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                if r.reference.is_none() || r.mutability.is_some() {
                    return Err(syn::Error::new(
                        r.span(),
                        "#[cached] methods take `&self`: the load may outlive the call, so it runs on a clone of `self`",
                    ));
                }
                receiver = true;
            }
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) if ident.by_ref.is_none() => names.push(ident.ident.clone()),
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        "#[cached] arguments are plain names (`id: u64`): the key and the load use them by name",
                    ))
                }
            },
        }
    }
    for name in placeholders(&args.key.value()) {
        if name.is_empty() || name.parse::<usize>().is_ok() {
            return Err(syn::Error::new(
                args.key.span(),
                "the key's placeholders name the function's arguments, e.g. \"product:{id}\"",
            ));
        }
        if !names.iter().any(|n| n == &name) {
            return Err(syn::Error::new(
                args.key.span(),
                format!("`{{{name}}}` in the key is not an argument of this function"),
            ));
        }
    }

    let attrs = &function.attrs;
    let vis = &function.vis;
    let body = &function.block;
    let name = &sig.ident;
    let uncached = format_ident!("__{}_uncached", name);
    let mut inner_sig = sig.clone();
    inner_sig.ident = uncached.clone();
    let mut outer_sig = sig.clone();
    let error_span = error.span();
    outer_sig.output = syn::parse2(quote_spanned! {error_span=>
        -> ::std::result::Result<#value, ::cache_loading::LoadError<#error>>
    })?;
    let loader = &args.loader;
    let key = &args.key;
    let options = match &args.options {
        Some(options) => quote!(#options),
        None => quote!(::cache_loading::Loader::defaults(__loader)),
    };
    let ttl = match args.ttl {
        Some((ms, span)) => quote_spanned! {span=>
            __options = __options.with_ttl(::std::option::Option::Some(
                ::std::time::Duration::from_millis(#ms),
            ));
        },
        None => quote!(),
    };
    let call = if receiver {
        quote!(__this.#uncached(#(#names),*).await)
    } else {
        quote!(#uncached(#(#names),*).await)
    };
    let this = receiver.then(|| quote!(let __this = ::std::clone::Clone::clone(self);));
    Ok(quote! {
        #[doc(hidden)]
        #[allow(clippy::needless_lifetimes)]
        #inner_sig #body

        #(#attrs)*
        #vis #outer_sig {
            let __loader = &#loader;
            let __key = ::std::format!(#key);
            let mut __options: ::cache_loading::LoadOptions = #options;
            #ttl
            #this
            ::cache_loading::Loader::get_or_load_with(
                __loader,
                &__key,
                __options,
                move || async move { #call },
            )
            .await
        }
    })
}
