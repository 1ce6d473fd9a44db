//! The `#[function]` attribute and the `ability!` macro of `spore-guest`; use them
//! through `spore_guest::function` and `spore_guest::ability!`.
//!
//! Both only generate glue: `#[function]` the export with the ABI signature, which hands
//! the argument buffer to `spore_guest::__private` and calls the annotated fn;
//! `ability!` the imports of an ability's operations, each wrapped in a fn that hands
//! the request to `spore_guest::ability`. All decoding, encoding and error wording lives
//! in `spore-guest`, so this crate knows nothing about the host, and of CBOR only the
//! few heads of a function's signature record (`signature`), which must be bytes when
//! the module is compiled.

mod ability;
mod signature;

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Error, FnArg, ItemFn, Pat, ReturnType, Type};

/// Declares a custom ability: a module with one function per operation.
///
/// ```ignore
/// spore_guest::ability!(pub sensor { read, calibrate });
/// let reading: Reading = sensor::read("attic")?;
/// ```
///
/// See `spore_guest::ability!` for the whole syntax; it is documented (and its examples
/// compiled) there, since this crate cannot depend on `spore-guest`.
#[proc_macro]
pub fn ability(input: TokenStream) -> TokenStream {
    let declaration = syn::parse_macro_input!(input as ability::Declaration);
    ability::expand(&declaration)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// Exports a Rust function as a spore function.
///
/// The parameters must implement `serde::de::DeserializeOwned` and the result
/// `serde::Serialize`. A result written as `Result<T, E>` (recognised by the name
/// `Result`) reports `Ok` as success and `Err` as the function's error value; any other
/// result is always a success, and `()` becomes CBOR `null`.
///
/// The function stays an ordinary Rust function, callable (and testable) natively. On
/// `wasm32` the attribute adds an export of the same name with the ABI signature
/// `(ptr: i32, len: i32) -> i64`, which decodes the argument array, checks its length
/// and the type of every argument, and reports mismatches as argument errors. Types are
/// matched as CBOR has them: an integer does not fit an `f64` parameter.
///
/// (Not compiled here, since this crate cannot depend on `spore-guest`.)
///
/// ```ignore
/// #[spore_guest::function]
/// fn div(a: i64, b: i64) -> Result<i64, String> {
///     a.checked_div(b).ok_or_else(|| format!("cannot divide {a} by {b}"))
/// }
/// ```
///
/// Names starting with `spore_`, the name `memory` and names outside `[A-Za-z0-9_]` are
/// refused, because the ABI reserves them or cannot call them.
#[proc_macro_attribute]
pub fn function(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func = syn::parse_macro_input!(item as ItemFn);
    let expanded = if attr.is_empty() {
        expand(&func)
    } else {
        Err(Error::new(
            proc_macro2::TokenStream::from(attr).span(),
            "`#[spore_guest::function]` takes no arguments",
        ))
    };
    match expanded {
        Ok(tokens) => tokens.into(),
        // Keep the function itself so one mistake does not cascade into
        // "cannot find function" errors at every native call site.
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#func #error).into()
        }
    }
}

fn expand(func: &ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let sig = &func.sig;
    let name = &sig.ident;
    let export_name = name.unraw().to_string();
    check_signature(func, &export_name)?;

    let mut param_names = Vec::new();
    let mut param_types = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(typed) = input else {
            return Err(Error::new(
                input.span(),
                "a spore function cannot take `self`",
            ));
        };
        let Pat::Ident(pat) = &*typed.pat else {
            return Err(Error::new(
                typed.pat.span(),
                "spore function parameters must be plain names, so errors can name them",
            ));
        };
        param_names.push(pat.ident.unraw().to_string());
        param_types.push(&*typed.ty);
    }
    let params: Vec<(String, &Type)> = param_names
        .iter()
        .cloned()
        .zip(param_types.iter().copied())
        .collect();
    let record = signature::record(&export_name, &params, &sig.output);
    let record_len = record.len();
    let bindings: Vec<_> = (0..param_names.len())
        .map(|i| format_ident!("__spore_arg{i}"))
        .collect();

    let call = quote!(#name(#(#bindings),*));
    let reply = if returns_result(&sig.output) {
        quote!(::spore_guest::__private::reply_result(#call))
    } else {
        quote!(::spore_guest::__private::reply(&#call))
    };

    Ok(quote! {
        #func

        const _: () = {
            // The function's signature (spec/abi.md, "Signatures"), in the module's
            // `spore.signatures` custom section: the linker concatenates every
            // function's record there.
            #[cfg(target_arch = "wasm32")]
            #[unsafe(link_section = "spore.signatures")]
            #[used]
            static __SPORE_SIGNATURE: [u8; #record_len] = [#(#record),*];

            // Exported only on wasm32: natively, unmangled names such as `div` would
            // collide with libc, and the fn above is what native callers want anyway.
            // Every local is prefixed so that no user function name is shadowed.
            #[cfg_attr(target_arch = "wasm32", unsafe(export_name = #export_name))]
            #[allow(dead_code)]
            extern "C" fn __spore_export(__spore_ptr: i32, __spore_len: i32) -> i64 {
                let __spore_call = |__spore_input: &[u8]| {
                    ::spore_guest::__private::invoke(
                        __spore_input,
                        #export_name,
                        &[#(#param_names),*],
                        |__spore_args| {
                            #(let #bindings: #param_types = __spore_args.take()?;)*
                            ::core::result::Result::Ok(#reply)
                        },
                    )
                };
                // SAFETY: the host calls the export with the argument buffer it wrote
                // through `spore_alloc` (spec/abi.md).
                unsafe { ::spore_guest::__private::export(__spore_ptr, __spore_len, __spore_call) }
            }
        };
    })
}

fn check_signature(func: &ItemFn, export_name: &str) -> syn::Result<()> {
    let sig = &func.sig;
    let refuse = |span: Span, message: &str| Err(Error::new(span, message));
    if let Some(asyncness) = &sig.asyncness {
        return refuse(asyncness.span(), "a spore function cannot be `async`");
    }
    if let Some(unsafety) = &sig.unsafety {
        return refuse(unsafety.span(), "a spore function cannot be `unsafe`");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return refuse(
            sig.generics.span(),
            "a spore function cannot be generic: the export needs concrete types",
        );
    }
    if let Some(variadic) = &sig.variadic {
        return refuse(variadic.span(), "a spore function cannot be variadic");
    }
    let name_span = sig.ident.span();
    if export_name.starts_with("spore_") {
        return refuse(
            name_span,
            "names starting with `spore_` are reserved for the ABI (spec/abi.md)",
        );
    }
    if export_name == "memory" {
        return refuse(
            name_span,
            "`memory` is the name of the exported linear memory",
        );
    }
    if export_name.len() > 128
        || !export_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return refuse(
            name_span,
            "spore function names are 1 to 128 characters of [A-Za-z0-9_] (spec/abi.md)",
        );
    }
    Ok(())
}

/// The ABI distinguishes a returned error from a value, so `Result` must be recognised;
/// this is syntactic (the last path segment), which also covers aliases named `Result`.
fn returns_result(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let mut ty = &**ty;
    // Types passed through `macro_rules!` arrive wrapped in invisible groups.
    while let Type::Group(group) = ty {
        ty = &group.elem;
    }
    let Type::Path(path) = ty else {
        return false;
    };
    path.qself.is_none()
        && path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Result")
}
