//! `ability!`: a module whose functions import the operations of one ability.

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, Error, Ident, LitStr, Token, Visibility, braced};

/// `#[attrs] vis module_name [= "ability-name"] { op [= "op-name"], ... }`
pub struct Declaration {
    attrs: Vec<Attribute>,
    vis: Visibility,
    module: Ident,
    name: Option<LitStr>,
    operations: Punctuated<Operation, Token![,]>,
}

/// `#[attrs] fn_name [= "op-name"]`
struct Operation {
    attrs: Vec<Attribute>,
    function: Ident,
    name: Option<LitStr>,
}

impl Parse for Declaration {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let module = input.parse()?;
        let name = optional_name(input)?;
        let body;
        braced!(body in input);
        let operations = body.parse_terminated(Operation::parse, Token![,])?;
        Ok(Declaration {
            attrs,
            vis,
            module,
            name,
            operations,
        })
    }
}

impl Parse for Operation {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        Ok(Operation {
            attrs: input.call(Attribute::parse_outer)?,
            function: input.parse()?,
            name: optional_name(input)?,
        })
    }
}

fn optional_name(input: ParseStream) -> syn::Result<Option<LitStr>> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        Ok(Some(input.parse()?))
    } else {
        Ok(None)
    }
}

/// The name on the wire: the string given, else the identifier (without `r#`).
fn wire_name(ident: &Ident, name: Option<&LitStr>) -> syn::Result<String> {
    let (text, span) = match name {
        Some(name) => (name.value(), name.span()),
        None => (ident.unraw().to_string(), ident.span()),
    };
    // spec/abilities.md, "Names and shapes".
    let mut bytes = text.bytes();
    let valid = text.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        return Err(Error::new(
            span,
            format!(
                "`{text}` is not an ability word: ability and operation names are \
                 [a-z][a-z0-9_-]*, at most 64 bytes (spec/abilities.md); \
                 write `rust_name = \"wire-name\"` for other names"
            ),
        ));
    }
    Ok(text)
}

fn has_doc(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| attr.path().is_ident("doc"))
}

pub fn expand(declaration: &Declaration) -> syn::Result<TokenStream> {
    let Declaration {
        attrs,
        vis,
        module,
        name,
        operations,
    } = declaration;
    let ability = wire_name(module, name.as_ref())?;
    if operations.is_empty() {
        return Err(Error::new(
            module.span(),
            "an ability needs at least one operation",
        ));
    }

    let mut seen_functions = BTreeSet::new();
    let mut seen_operations = BTreeSet::new();
    let mut functions = Vec::new();
    for operation in operations {
        let Operation {
            attrs,
            function,
            name,
        } = operation;
        let wire = wire_name(function, name.as_ref())?;
        if !seen_functions.insert(function.unraw().to_string())
            || !seen_operations.insert(wire.clone())
        {
            return Err(Error::new(
                function.span(),
                format!("operation `{wire}` is declared twice"),
            ));
        }
        let doc = (!has_doc(attrs)).then(|| {
            let doc = format!(
                " Performs operation `{wire}` of ability `{ability}`: sends `request` as \
                 CBOR and decodes the result into `Response`."
            );
            quote!(#[doc = #doc])
        });
        functions.push(quote! {
            #(#attrs)*
            #doc
            pub fn #function<Request, Response>(
                request: &Request,
            ) -> ::core::result::Result<Response, ::spore_guest::ability::AbilityError>
            where
                Request: ::spore_guest::__private::serde::Serialize + ?::core::marker::Sized,
                Response: ::spore_guest::__private::serde::de::DeserializeOwned,
            {
                #[cfg(target_arch = "wasm32")]
                {
                    #[link(wasm_import_module = #ability)]
                    unsafe extern "C" {
                        #[link_name = #wire]
                        fn __spore_import(ptr: i32, len: i32) -> i64;
                    }
                    // SAFETY: the host implements every import of an ability module as
                    // spec/abi.md's "Ability imports" says, or refuses to instantiate.
                    unsafe { ::spore_guest::ability::call(__spore_import, request) }
                }
                // Natively there is no host: the call fails, or goes to the fake
                // providers of `spore_guest::testing`.
                #[cfg(not(target_arch = "wasm32"))]
                {
                    ::spore_guest::__private::call_native(#ability, #wire, request)
                }
            }
        });
    }

    let doc = (!has_doc(attrs)).then(|| {
        let doc = format!(" The operations of the `{ability}` ability.");
        quote!(#[doc = #doc])
    });
    Ok(quote! {
        #(#attrs)*
        #doc
        #vis mod #module {
            #(#functions)*
        }
    })
}
