//! What each exported function can reach (`spec/manifest.md`, "Reach"): a static call
//! graph over the module's code, so that purity, placement and deny-by-default are
//! decided per function, not per module.
//!
//! The graph is conservative: a direct `call` (or `return_call`) reaches its callee; an
//! indirect call reaches every function that can be in a table (those in element
//! segments and those whose reference `ref.func` takes anywhere); and the start
//! function, which runs before any call, reaches for every function.

use std::collections::{BTreeSet, HashMap};

use wasmparser::{ElementItems, ExternalKind, Operator, Parser, Payload};

use super::ModuleError;

/// The module's functions as a graph: index space of imported then defined functions.
#[derive(Default)]
struct Graph {
    /// The ability each imported function belongs to, by function index.
    imports: Vec<String>,
    /// For each defined function (index minus the imports): the functions it calls
    /// directly, and whether it calls indirectly.
    calls: Vec<(Vec<u32>, bool)>,
    /// Functions that can be reached through a table.
    in_tables: BTreeSet<u32>,
    start: Option<u32>,
    /// Exported functions: name and index.
    exports: HashMap<String, u32>,
}

/// The abilities reachable from each exported function called one of `names`, sorted.
/// `bytes` must already have been validated.
pub(super) fn reach(
    bytes: &[u8],
    names: &[&str],
) -> Result<HashMap<String, Vec<String>>, ModuleError> {
    let graph = Graph::read(bytes)?;
    let from_start = graph.start.map(|start| graph.abilities_from(start));
    Ok(names
        .iter()
        .filter_map(|name| Some((*name, *graph.exports.get(*name)?)))
        .map(|(name, index)| {
            let mut abilities = graph.abilities_from(index);
            abilities.extend(from_start.iter().flatten().cloned());
            (name.to_owned(), abilities.into_iter().collect())
        })
        .collect())
}

impl Graph {
    fn read(bytes: &[u8]) -> Result<Graph, ModuleError> {
        let invalid = |e: wasmparser::BinaryReaderError| ModuleError::Invalid {
            message: e.message().to_owned(),
            offset: e.offset(),
        };
        let mut graph = Graph::default();
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.map_err(invalid)? {
                Payload::ImportSection(imports) => {
                    for import in imports.into_imports() {
                        let import = import.map_err(invalid)?;
                        // Only function imports pass validation (`Manifest::derive`).
                        graph.imports.push(import.module.to_owned());
                    }
                }
                Payload::StartSection { func, .. } => graph.start = Some(func),
                Payload::ExportSection(exports) => {
                    for export in exports {
                        let export = export.map_err(invalid)?;
                        if export.kind == ExternalKind::Func {
                            graph.exports.insert(export.name.to_owned(), export.index);
                        }
                    }
                }
                Payload::ElementSection(elements) => {
                    for element in elements {
                        match element.map_err(invalid)?.items {
                            ElementItems::Functions(functions) => {
                                for function in functions {
                                    graph.in_tables.insert(function.map_err(invalid)?);
                                }
                            }
                            ElementItems::Expressions(_, expressions) => {
                                for expression in expressions {
                                    let mut operators =
                                        expression.map_err(invalid)?.get_operators_reader();
                                    while !operators.eof() {
                                        if let Operator::RefFunc { function_index } =
                                            operators.read().map_err(invalid)?
                                        {
                                            graph.in_tables.insert(function_index);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                Payload::GlobalSection(globals) => {
                    for global in globals {
                        let mut operators =
                            global.map_err(invalid)?.init_expr.get_operators_reader();
                        while !operators.eof() {
                            if let Operator::RefFunc { function_index } =
                                operators.read().map_err(invalid)?
                            {
                                graph.in_tables.insert(function_index);
                            }
                        }
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    let mut direct = Vec::new();
                    let mut indirect = false;
                    let mut operators = body.get_operators_reader().map_err(invalid)?;
                    while !operators.eof() {
                        match operators.read().map_err(invalid)? {
                            Operator::Call { function_index }
                            | Operator::ReturnCall { function_index } => {
                                direct.push(function_index)
                            }
                            Operator::CallIndirect { .. } | Operator::ReturnCallIndirect { .. } => {
                                indirect = true
                            }
                            // A reference taken can be stored in a table and called.
                            Operator::RefFunc { function_index } => {
                                graph.in_tables.insert(function_index);
                            }
                            _ => {}
                        }
                    }
                    graph.calls.push((direct, indirect));
                }
                _ => {}
            }
        }
        Ok(graph)
    }

    /// The abilities of the imports reachable from function `from`.
    fn abilities_from(&self, from: u32) -> BTreeSet<String> {
        let mut abilities = BTreeSet::new();
        let mut seen = vec![false; self.imports.len() + self.calls.len()];
        let mut tables_seen = false;
        let mut stack = vec![from];
        while let Some(function) = stack.pop() {
            let Some(visited) = seen.get_mut(function as usize) else {
                continue;
            };
            if std::mem::replace(visited, true) {
                continue;
            }
            if let Some(ability) = self.imports.get(function as usize) {
                abilities.insert(ability.clone());
                continue;
            }
            let (direct, indirect) = &self.calls[function as usize - self.imports.len()];
            stack.extend(direct);
            if *indirect && !std::mem::replace(&mut tables_seen, true) {
                stack.extend(&self.in_tables);
            }
        }
        abilities
    }
}
