//! The OpenAPI 3.1 document, built from what each service declares next to
//! its router: its operations, with request bodies as JSON Schemas derived
//! from the very types the handlers parse (schemars, JSON Schema 2020-12,
//! which OpenAPI 3.1 uses as is).

use schemars::{JsonSchema, Schema};
use serde_json::{json, Map, Value};

/// One operation of the API.
#[derive(Clone, Debug)]
pub struct Operation {
    /// The HTTP method, lower case (`get`, `post`, …).
    pub method: &'static str,
    /// The path template, as the router has it (`/api/v1/cases/{id}`).
    pub path: &'static str,
    /// The group it is listed under (`consent`, …).
    pub tag: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Who may call it (shown in the description).
    pub who: &'static str,
    /// The JSON Schema of the request body; none: no body.
    pub body: Option<Schema>,
    /// Whether the body may be left out (it is required unless said).
    pub body_optional: bool,
    /// `(name, description)` of query parameters.
    pub query: Vec<(&'static str, &'static str)>,
    /// `(status, description)` of the answers.
    pub answers: Vec<(u16, &'static str)>,
    /// The JSON Schema of an answer's body, where one is declared (any
    /// JSON otherwise).
    pub answer_schemas: Vec<(u16, Schema)>,
    /// False for the few calls that need no token.
    pub auth: bool,
    /// OpenAPI links from an answer to the operations that take its ids.
    pub links: Vec<Link>,
}

/// Where a link takes a parameter's value from (an OpenAPI runtime
/// expression).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A field of the answer's JSON body, by JSON pointer: `"/id"`.
    Answer(&'static str),
    /// A path parameter of the request that got the answer.
    Path(&'static str),
    /// A field of the request's JSON body, by JSON pointer.
    Sent(&'static str),
}

impl Source {
    fn expression(self) -> String {
        match self {
            Source::Answer(pointer) => format!("$response.body#{pointer}"),
            Source::Path(name) => format!("$request.path.{name}"),
            Source::Sent(pointer) => format!("$request.body#{pointer}"),
        }
    }
}

/// Which operations a link leads to.
#[derive(Clone, Debug)]
pub enum Target {
    /// One operation, by method and path.
    One(&'static str, &'static str),
    /// Every operation on this path or below it (but the linking one).
    Under(&'static str),
}

/// A link from one answer of an operation: the targets, with the
/// parameters they take from it. A parameter a target does not have is
/// left out for it; a target this process does not serve (another
/// service's, when run apart) is left out of the document.
#[derive(Clone, Debug)]
pub struct Link {
    /// The answer's status the link is made from.
    pub status: u16,
    /// The operations it leads to.
    pub target: Target,
    /// Each target parameter's name and where its value comes from.
    pub parameters: Vec<(&'static str, Source)>,
}

/// The operation id of `method path`: `post_api_v1_cases__id__meetings`.
pub fn operation_id(method: &str, path: &str) -> String {
    format!(
        "{}_{}",
        method,
        path.replace(['/', '{', '}', '.', '-'], "_")
            .trim_matches('_')
    )
}

impl Operation {
    pub fn new(
        method: &'static str,
        path: &'static str,
        tag: &'static str,
        summary: &'static str,
    ) -> Operation {
        Operation {
            method,
            path,
            tag,
            summary,
            who: "any signed-in user",
            body: None,
            body_optional: false,
            query: Vec::new(),
            answers: Vec::new(),
            answer_schemas: Vec::new(),
            auth: true,
            links: Vec::new(),
        }
    }

    pub fn who(mut self, who: &'static str) -> Operation {
        self.who = who;
        self
    }

    pub fn body<T: JsonSchema>(mut self) -> Operation {
        self.body = Some(schemars::schema_for!(T));
        self
    }

    /// A body that may be left out as a whole.
    pub fn optional_body<T: JsonSchema>(mut self) -> Operation {
        self.body = Some(schemars::schema_for!(T));
        self.body_optional = true;
        self
    }

    pub fn query(mut self, name: &'static str, description: &'static str) -> Operation {
        self.query.push((name, description));
        self
    }

    pub fn answer(mut self, status: u16, description: &'static str) -> Operation {
        self.answers.push((status, description));
        self
    }

    /// An answer whose JSON body has the schema of `T`.
    pub fn answer_with<T: JsonSchema>(
        mut self,
        status: u16,
        description: &'static str,
    ) -> Operation {
        self.answers.push((status, description));
        self.answer_schemas.push((status, schemars::schema_for!(T)));
        self
    }

    pub fn public(mut self) -> Operation {
        self.auth = false;
        self
    }

    /// A link from the `status` answer to one operation.
    pub fn link(
        mut self,
        status: u16,
        method: &'static str,
        path: &'static str,
        parameters: &[(&'static str, Source)],
    ) -> Operation {
        self.links.push(Link {
            status,
            target: Target::One(method, path),
            parameters: parameters.to_vec(),
        });
        self
    }

    /// Links from the `status` answer to every operation on `prefix` or
    /// below it, e.g. from `POST /api/v1/cases` to all of
    /// `/api/v1/cases/{id}`.
    pub fn links_under(
        mut self,
        status: u16,
        prefix: &'static str,
        parameters: &[(&'static str, Source)],
    ) -> Operation {
        self.links.push(Link {
            status,
            target: Target::Under(prefix),
            parameters: parameters.to_vec(),
        });
        self
    }
}

/// The parameter names an operation takes: its path's and its query's.
fn parameter_names(op: &Operation) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = op
        .path
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect();
    names.extend(op.query.iter().map(|(name, _)| *name));
    names
}

/// The `links` object of one answer: each target by its operation id.
fn links_of(op: &Operation, status: u16, operations: &[Operation]) -> Map<String, Value> {
    let mut links = Map::new();
    for link in op.links.iter().filter(|l| l.status == status) {
        let targets = operations.iter().filter(|t| match link.target {
            Target::One(method, path) => t.method == method && t.path == path,
            Target::Under(prefix) => {
                !(t.method == op.method && t.path == op.path)
                    && (t.path == prefix
                        || t.path
                            .strip_prefix(prefix)
                            .is_some_and(|rest| rest.starts_with('/')))
            }
        });
        for target in targets {
            let names = parameter_names(target);
            let parameters: Map<String, Value> = link
                .parameters
                .iter()
                .filter(|(name, _)| names.contains(name))
                .map(|(name, source)| (name.to_string(), Value::String(source.expression())))
                .collect();
            let id = operation_id(target.method, target.path);
            links.insert(
                id.clone(),
                json!({ "operationId": id, "parameters": parameters }),
            );
        }
    }
    links
}

/// Path parameters: every `{name}` in the path.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect()
}

/// Moves a schema's `$defs` into the document's shared schemas and points
/// its references there (`#/$defs/X` only resolves inside the schema).
fn hoist(schema: &Schema, shared: &mut Map<String, Value>) -> Value {
    fn rewrite(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get_mut("$ref") {
                    if let Some(name) = r.strip_prefix("#/$defs/") {
                        *r = format!("#/components/schemas/{name}");
                    }
                }
                map.values_mut().for_each(rewrite);
            }
            Value::Array(items) => items.iter_mut().for_each(rewrite),
            _ => {}
        }
    }
    let mut value = schema.clone().to_value();
    if let Some(Value::Object(defs)) = value.as_object_mut().and_then(|o| o.remove("$defs")) {
        for (name, mut def) in defs {
            rewrite(&mut def);
            shared.insert(name, def);
        }
    }
    if let Some(o) = value.as_object_mut() {
        o.remove("$schema");
    }
    rewrite(&mut value);
    value
}

/// The whole document.
pub fn document(version: &str, operations: &[Operation]) -> Value {
    let mut paths = Map::new();
    let mut shared = Map::new();
    for op in operations {
        let mut parameters = path_parameters(op.path);
        for (name, description) in &op.query {
            parameters.push(json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } }));
        }
        let mut responses = Map::new();
        for (status, description) in &op.answers {
            // What the answer really carries: nothing with 204, a calendar
            // for a feed, JSON otherwise.
            let answer = match (*status, op.path.ends_with(".ics")) {
                (204, _) => json!({ "description": description }),
                (400.., _) => {
                    json!({ "description": description, "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } })
                }
                (_, true) => {
                    json!({ "description": description, "content": { "text/calendar": { "schema": { "type": "string" } } } })
                }
                _ => {
                    let schema = op
                        .answer_schemas
                        .iter()
                        .find(|(s, _)| s == status)
                        .map(|(_, schema)| hoist(schema, &mut shared))
                        .unwrap_or_else(|| json!({}));
                    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
                }
            };
            responses.insert(status.to_string(), answer);
        }
        let mut common = vec![
            (400, "Bad input: the problem names the field"),
            (401, "No valid token"),
            (403, "The caller's role may not do this"),
            (
                404,
                "Not found, or a case the caller's agency is not a member of",
            ),
            (422, "A field breaks a rule: the problem names it"),
        ];
        // What the shared layers answer too, so that every answer a client
        // can get is in the document (schemathesis checks it).
        if op.method != "get" {
            common.push((
                409,
                "The resource is not in a state that allows this, or it is busy: retry",
            ));
            common.push((412, "If-Match named a version that is no longer current"));
        }
        // A case's own paths, and its meetings' and tasks': once the case
        // is erased, they answer 410 (its rows may already be gone: 404).
        let of_a_case = op.path.contains("/cases/{id}")
            || op.path.starts_with("/api/v1/meetings")
            || op.path.starts_with("/api/v1/tasks/{id}");
        if of_a_case && !op.path.starts_with("/api/v1/audit/") {
            common.push((410, "The case was erased: code `erased`, with its case_id"));
        }
        if op.body.is_some() {
            common.push((413, "The body is larger than the limit"));
            common.push((415, "Content-Type is not application/json"));
        }
        for (status, description) in common {
            responses.entry(status.to_string()).or_insert_with(|| {
                json!({ "description": description, "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } })
            });
        }
        // Every route is behind the rate limits (per user, per address,
        // and stricter on sign-in): one shared answer, declared once.
        responses
            .entry("429".to_string())
            .or_insert_with(|| json!({ "$ref": "#/components/responses/TooManyRequests" }));
        responses.entry("503".to_string()).or_insert_with(|| {
            json!({
                "description": "The store is unavailable for a moment: retry after Retry-After",
                "headers": { "Retry-After": { "required": true, "description": "Seconds to wait", "schema": { "type": "string" } } },
                "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } },
            })
        });
        for (status, answer) in responses.iter_mut() {
            let links = status
                .parse()
                .map(|status| links_of(op, status, operations))
                .unwrap_or_default();
            if !links.is_empty() {
                answer["links"] = Value::Object(links);
            }
        }
        let mut operation = json!({
            "tags": [op.tag],
            "summary": op.summary,
            "description": format!("Who: {}.", op.who),
            "operationId": operation_id(op.method, op.path),
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(schema) = &op.body {
            let schema = hoist(schema, &mut shared);
            operation["requestBody"] = json!({ "required": !op.body_optional, "content": { "application/json": { "schema": schema } } });
        }
        if !op.auth {
            operation["security"] = json!([]);
        }
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    shared.insert(
        "Problem".into(),
        json!({
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": { "type": "string" },
                "title": { "type": "string" },
                "status": { "type": "integer" },
                "detail": { "type": "string" },
                "field": { "type": "string" },
                "code": { "type": "string" },
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "code", "detail"],
                        "properties": {
                            "field": { "type": "string" },
                            "code": { "type": "string" },
                            "detail": { "type": "string" },
                        },
                    },
                },
                "request_id": { "type": "string" },
                "case_id": { "type": "string" },
            },
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Verkosto",
            "version": version,
            "description": "Multi-agency case conferences for victims of human trafficking. Every read of client data is filtered by the client's consent and returns `consent_version` and `withheld`.",
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": shared,
            "responses": {
                "TooManyRequests": {
                    "description": "Too many requests from this user or address (code `rate_limited`): wait the Retry-After seconds",
                    "headers": {
                        "Retry-After": {
                            "description": "Seconds to wait before trying again",
                            "schema": { "type": "integer", "minimum": 1 },
                        },
                    },
                    "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(JsonSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
    }

    #[test]
    fn operations_become_paths_with_parameters_and_bodies() {
        let doc = document(
            "1",
            &[Operation::new(
                "post",
                "/api/v1/cases/{id}/records",
                "cases",
                "Add a record",
            )
            .body::<Body>()
            .answer(201, "Recorded")],
        );
        let op = &doc["paths"]["/api/v1/cases/{id}/records"]["post"];
        assert_eq!(op["parameters"][0]["name"], "id");
        assert_eq!(
            op["requestBody"]["content"]["application/json"]["schema"]["properties"]["name"]
                ["type"],
            "string"
        );
        assert!(op["responses"]["201"].is_object() && op["responses"]["422"].is_object());
        assert_eq!(
            op["responses"]["429"]["$ref"],
            "#/components/responses/TooManyRequests"
        );
        let limited = &doc["components"]["responses"]["TooManyRequests"];
        assert!(limited["headers"]["Retry-After"].is_object(), "{limited}");
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn answers_promise_what_they_carry() {
        let doc = document(
            "1",
            &[
                Operation::new("delete", "/api/v1/things/{id}", "t", "Remove").answer(204, "Gone"),
                Operation::new("get", "/api/v1/calendar/{agency}.ics", "t", "Feed")
                    .answer(200, "Feed"),
            ],
        );
        let gone = &doc["paths"]["/api/v1/things/{id}"]["delete"]["responses"]["204"];
        assert!(gone.get("content").is_none(), "{gone}");
        let feed = &doc["paths"]["/api/v1/calendar/{agency}.ics"]["get"]["responses"]["200"];
        assert!(feed["content"]["text/calendar"].is_object(), "{feed}");
    }

    #[derive(JsonSchema, serde::Serialize)]
    struct Made {
        id: String,
    }

    #[test]
    fn a_declared_answer_body_and_an_optional_request_body_are_in_the_document() {
        let doc = document(
            "1",
            &[Operation::new("post", "/api/v1/things", "t", "Make")
                .optional_body::<Body>()
                .answer_with::<Made>(201, "Made")],
        );
        let op = &doc["paths"]["/api/v1/things"]["post"];
        assert_eq!(op["requestBody"]["required"], false);
        let made = &op["responses"]["201"]["content"]["application/json"]["schema"];
        assert_eq!(made["properties"]["id"]["type"], "string", "{made}");
    }

    #[test]
    fn links_lead_from_an_answer_to_the_operations_that_take_its_ids() {
        let doc = document(
            "1",
            &[
                Operation::new("post", "/api/v1/things", "t", "Make")
                    .answer(201, "Made")
                    .links_under(201, "/api/v1/things/{id}", &[("id", Source::Answer("/id"))])
                    .link(
                        201,
                        "get",
                        "/api/v1/other",
                        &[("thing", Source::Answer("/id"))],
                    ),
                Operation::new("get", "/api/v1/things/{id}", "t", "One").answer(200, "It"),
                Operation::new("post", "/api/v1/things/{id}/parts/{part}", "t", "Part")
                    .answer(200, "Done"),
                Operation::new("get", "/api/v1/thingsx/{id}", "t", "Not below").answer(200, "It"),
                Operation::new("get", "/api/v1/other", "t", "Query")
                    .query("thing", "a thing")
                    .answer(200, "It"),
            ],
        );
        let links = doc["paths"]["/api/v1/things"]["post"]["responses"]["201"]["links"]
            .as_object()
            .unwrap();
        let mut ids: Vec<&String> = links.keys().collect();
        ids.sort();
        assert_eq!(
            ids,
            [
                "get_api_v1_other",
                "get_api_v1_things__id",
                "post_api_v1_things__id__parts__part"
            ]
        );
        let part = &links["post_api_v1_things__id__parts__part"];
        assert_eq!(part["operationId"], "post_api_v1_things__id__parts__part");
        assert_eq!(part["parameters"], json!({ "id": "$response.body#/id" }));
        assert_eq!(
            links["get_api_v1_other"]["parameters"],
            json!({ "thing": "$response.body#/id" })
        );
        // Every link leads to an operation of the document.
        let ids: Vec<&Value> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|m| m.as_object().unwrap().values())
            .map(|op| &op["operationId"])
            .collect();
        for link in links.values() {
            assert!(ids.contains(&&link["operationId"]), "{link}");
        }
    }

    #[test]
    fn writes_and_bodies_declare_what_the_shared_layers_answer() {
        let doc = document(
            "1",
            &[
                Operation::new("post", "/api/v1/things", "t", "Make")
                    .body::<Body>()
                    .answer(201, "Made"),
                Operation::new("get", "/api/v1/things", "t", "List").answer(200, "Them"),
            ],
        );
        let post = &doc["paths"]["/api/v1/things"]["post"]["responses"];
        for status in ["409", "412", "413", "415", "503"] {
            assert!(
                post[status]["content"]["application/problem+json"].is_object(),
                "{status}"
            );
        }
        assert_eq!(post["503"]["headers"]["Retry-After"]["required"], true);
        let get = &doc["paths"]["/api/v1/things"]["get"]["responses"];
        assert!(
            get.get("409").is_none() && get.get("415").is_none(),
            "{get}"
        );
    }
}
