//! The subset of TraceQL that Grafana's Tempo search builder writes: one spanset filter `{ … }` of
//! conditions joined by `&&` and `||` with parentheses; `=`, `!=`, `=~`, `!~`, `<`, `<=`, `>`, `>=`;
//! `resource.`, `span.` and unscoped `.attr` attributes; the intrinsics `name`, `status`, `kind`,
//! `duration`, `traceDuration`, `rootName`, `rootServiceName`, `statusMessage`; string, int, float, bool
//! and duration literals. Anything else (pipelines, aggregates, structural and spanset operators, other
//! scopes) is refused by [`parse`] with an error that names the part.
//!
//! [`Query::matches_span`] evaluates the filter on one decoded span with its trace's facts; the Tempo
//! search endpoint keeps the traces with a matching span. [`Query::index_hints`] gives the conditions the
//! trace index can pre-filter on.

use std::fmt;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};

/// A parsed query: `{}` has no filter and matches every span.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub filter: Option<Expr>,
}

/// A boolean expression inside the braces.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Condition(Condition),
}

/// `field op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: Field,
    pub op: Op,
    pub value: Literal,
    /// The compiled pattern of `=~` / `!~` (anchored, as Tempo's).
    pub regex: Option<Pattern>,
}

/// A compiled regular expression, compared by its source.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeScope {
    Resource,
    Span,
    /// `.name`: the span's attribute, else the resource's.
    Any,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Attribute(AttributeScope, String),
    Intrinsic(Intrinsic),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intrinsic {
    Name,
    Status,
    Kind,
    Duration,
    TraceDuration,
    RootName,
    RootServiceName,
    StatusMessage,
}

impl Intrinsic {
    pub const ALL: [(&'static str, Intrinsic); 8] = [
        ("name", Intrinsic::Name),
        ("status", Intrinsic::Status),
        ("kind", Intrinsic::Kind),
        ("duration", Intrinsic::Duration),
        ("traceDuration", Intrinsic::TraceDuration),
        ("rootName", Intrinsic::RootName),
        ("rootServiceName", Intrinsic::RootServiceName),
        ("statusMessage", Intrinsic::StatusMessage),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, i)| *i == self).map_or("", |(n, _)| n)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub const ALL: [(&'static str, Op); 8] = [
        ("=~", Op::Re),
        ("!~", Op::NotRe),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("=", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    pub fn symbol(self) -> &'static str {
        Self::ALL.iter().find(|(_, o)| *o == self).map_or("", |(s, _)| s)
    }
}

/// A literal value. Durations are nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Duration(i64),
    Status(StatusValue),
    Kind(KindValue),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusValue {
    Error,
    Ok,
    Unset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindValue {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

const STATUS_VALUES: [(&str, StatusValue); 3] =
    [("error", StatusValue::Error), ("ok", StatusValue::Ok), ("unset", StatusValue::Unset)];
const KIND_VALUES: [(&str, KindValue); 6] = [
    ("unspecified", KindValue::Unspecified),
    ("internal", KindValue::Internal),
    ("server", KindValue::Server),
    ("client", KindValue::Client),
    ("producer", KindValue::Producer),
    ("consumer", KindValue::Consumer),
];
const DURATION_UNITS: [(&str, i64); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Why a query was refused, with the byte offset of the part.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("TraceQL: {message} (at offset {offset})")]
pub struct ParseError {
    pub message: String,
    pub offset: usize,
}

/// Parses a query of the supported subset.
pub fn parse(text: &str) -> Result<Query, ParseError> {
    let mut parser = Parser { text, position: 0 };
    parser.skip_space();
    if parser.rest().is_empty() {
        return Ok(Query { filter: None });
    }
    parser.expect("{", "a query starts with `{`")?;
    parser.skip_space();
    let filter = if parser.rest().starts_with('}') { None } else { Some(parser.or()?) };
    parser.skip_space();
    parser.expect("}", "expected `&&`, `||` or `}`")?;
    parser.skip_space();
    if !parser.rest().is_empty() {
        return Err(parser.unsupported_after_spanset());
    }
    Ok(Query { filter })
}

struct Parser<'a> {
    text: &'a str,
    position: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.position..]
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.position = self.text.len() - trimmed.len();
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError { message: message.into(), offset: self.position }
    }

    fn expect(&mut self, token: &str, message: &str) -> Result<(), ParseError> {
        if self.rest().starts_with(token) {
            self.position += token.len();
            return Ok(());
        }
        let found: String = self.rest().chars().take(20).collect();
        Err(self.error(if found.is_empty() {
            format!("{message}, found the end")
        } else {
            format!("{message}, found {found:?}")
        }))
    }

    fn unsupported_after_spanset(&self) -> ParseError {
        let rest = self.rest();
        let part = if rest.starts_with('|') {
            "pipelines and aggregates (`| …`) are not supported"
        } else if ["&&", "||"].iter().any(|op| rest.starts_with(op)) {
            "spanset operators (`{…} && {…}`, `{…} || {…}`) are not supported"
        } else if [">>", "<<", "!>>", "!<<", "~", "!~", ">", "<", "&>>", "&<<", "&>", "&<", "&~"]
            .iter()
            .any(|op| rest.starts_with(op))
        {
            "structural operators (`>>`, `>`, `~`, `<<`, `<`) are not supported"
        } else {
            "only one spanset filter `{…}` is supported"
        };
        let shown: String = rest.chars().take(30).collect();
        self.error(format!("{part}: {shown:?}"))
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        loop {
            self.skip_space();
            if !self.rest().starts_with("||") {
                return Ok(left);
            }
            self.position += 2;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.primary()?;
        loop {
            self.skip_space();
            if !self.rest().starts_with("&&") {
                return Ok(left);
            }
            self.position += 2;
            let right = self.primary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        self.skip_space();
        if self.rest().starts_with('(') {
            self.position += 1;
            let inner = self.or()?;
            self.skip_space();
            self.expect(")", "expected `)`")?;
            return Ok(inner);
        }
        if self.rest().starts_with('!') && !self.rest().starts_with("!=") {
            return Err(self.error("negation `!(…)` is not supported"));
        }
        self.condition().map(Expr::Condition)
    }

    fn condition(&mut self) -> Result<Condition, ParseError> {
        let field = self.field()?;
        self.skip_space();
        let Some((symbol, op)) = Op::ALL.iter().find(|(symbol, _)| self.rest().starts_with(symbol)).copied() else {
            if self.rest().starts_with('}') || self.rest().starts_with("&&") || self.rest().starts_with("||") {
                return Err(self.error("a field alone (existence checks) is not supported: compare it with a value"));
            }
            let found: String = self.rest().chars().take(20).collect();
            return Err(self.error(format!("expected a comparison (=, !=, =~, !~, <, <=, >, >=), found {found:?}")));
        };
        self.position += symbol.len();
        self.skip_space();
        let value_offset = self.position;
        let value = self.literal()?;
        let regex = match (op, &value) {
            (Op::Re | Op::NotRe, Literal::String(pattern)) => {
                Some(Pattern(regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| ParseError {
                    message: format!("invalid regular expression {pattern:?}: {e}"),
                    offset: value_offset,
                })?))
            }
            (Op::Re | Op::NotRe, _) => {
                return Err(ParseError { message: format!("`{symbol}` needs a string"), offset: value_offset });
            }
            _ => None,
        };
        Ok(Condition { field, op, value, regex })
    }

    fn attribute_name(&mut self) -> Result<String, ParseError> {
        if self.rest().starts_with('"') {
            return self.string();
        }
        let length = self
            .rest()
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':' | '@')))
            .map_or(self.rest().len(), |(index, _)| index);
        if length == 0 {
            return Err(self.error("expected an attribute name"));
        }
        let name = self.rest()[..length].to_string();
        self.position += length;
        Ok(name)
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        self.skip_space();
        if self.rest().starts_with('.') {
            self.position += 1;
            return Ok(Field::Attribute(AttributeScope::Any, self.attribute_name()?));
        }
        for (prefix, scope) in [("resource.", AttributeScope::Resource), ("span.", AttributeScope::Span)] {
            if self.rest().starts_with(prefix) {
                self.position += prefix.len();
                return Ok(Field::Attribute(scope, self.attribute_name()?));
            }
        }
        let word_length = self
            .rest()
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | ':' | '.')))
            .map_or(self.rest().len(), |(index, _)| index);
        let word = &self.rest()[..word_length];
        if let Some((name, intrinsic)) = Intrinsic::ALL.iter().find(|(name, _)| *name == word) {
            self.position += name.len();
            return Ok(Field::Intrinsic(*intrinsic));
        }
        if let Some(scope) = [
            "event.",
            "link.",
            "instrumentation.",
            "trace:",
            "span:",
            "event:",
            "link:",
            "instrumentation:",
            "resource:",
        ]
        .iter()
        .find(|scope| word.starts_with(*scope))
        {
            return Err(self.error(format!("the scope `{scope}` is not supported (use resource., span. or .attr)")));
        }
        if ["count", "avg", "min", "max", "sum", "select", "by", "coalesce", "quantile_over_time", "rate"]
            .contains(&word)
        {
            return Err(self.error(format!("`{word}` (aggregates, pipelines) is not supported")));
        }
        if word.is_empty() {
            let found: String = self.rest().chars().take(20).collect();
            return Err(self.error(format!("expected a field, found {found:?}")));
        }
        Err(self
            .error(format!("unknown intrinsic `{word}` (supported: {})", Intrinsic::ALL.map(|(n, _)| n).join(", "))))
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let quote = self.rest().chars().next();
        let Some(quote @ ('"' | '`')) = quote else { return Err(self.error("expected a string")) };
        let start = self.position;
        self.position += 1;
        let mut value = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((index, c)) = chars.next() {
            if c == quote {
                self.position += index + 1;
                return Ok(value);
            }
            if c == '\\' && quote == '"' {
                match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                }
            } else {
                value.push(c);
            }
        }
        Err(ParseError { message: "unterminated string".into(), offset: start })
    }

    fn literal(&mut self) -> Result<Literal, ParseError> {
        let rest = self.rest();
        if rest.starts_with('"') || rest.starts_with('`') {
            return self.string().map(Literal::String);
        }
        let length = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '.' | '-' | '+' | '_' | 'µ')))
            .map_or(rest.len(), |(index, _)| index);
        let word = &rest[..length];
        let literal = literal_of(word).ok_or_else(|| {
            if word == "nil" {
                self.error("`nil` is not supported")
            } else if word.is_empty() {
                let found: String = rest.chars().take(20).collect();
                self.error(format!("expected a value, found {found:?}"))
            } else {
                self.error(format!("invalid value `{word}` (strings need double quotes)"))
            }
        })?;
        self.position += length;
        Ok(literal)
    }
}

fn literal_of(word: &str) -> Option<Literal> {
    match word {
        "true" => return Some(Literal::Bool(true)),
        "false" => return Some(Literal::Bool(false)),
        _ => {}
    }
    if let Some((_, status)) = STATUS_VALUES.iter().find(|(name, _)| *name == word) {
        return Some(Literal::Status(*status));
    }
    if let Some((_, kind)) = KIND_VALUES.iter().find(|(name, _)| *name == word) {
        return Some(Literal::Kind(*kind));
    }
    if let Ok(int) = word.parse::<i64>() {
        return Some(Literal::Int(int));
    }
    if word.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') {
        // Longest unit first: `ms` before `m` and `s`.
        let mut units = DURATION_UNITS;
        units.sort_by_key(|(unit, _)| std::cmp::Reverse(unit.len()));
        for (unit, scale) in units {
            if let Some(number) = word.strip_suffix(unit)
                && let Ok(value) = number.parse::<f64>()
                && value.is_finite()
            {
                return Some(Literal::Duration((value * scale as f64).round() as i64));
            }
        }
        if let Ok(float) = word.parse::<f64>()
            && float.is_finite()
            && !word.contains(['e', 'E', 'i', 'n', 'N', '+'])
        {
            return Some(Literal::Float(float));
        }
    }
    None
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.filter {
            None => write!(f, "{{}}"),
            Some(expr) => write!(f, "{{ {expr} }}"),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(left, right) => write!(f, "({left} && {right})"),
            Expr::Or(left, right) => write!(f, "({left} || {right})"),
            Expr::Condition(condition) => write!(f, "{condition}"),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Field::Attribute(AttributeScope::Resource, name) => write!(f, "resource.{}", quoted_name(name))?,
            Field::Attribute(AttributeScope::Span, name) => write!(f, "span.{}", quoted_name(name))?,
            Field::Attribute(AttributeScope::Any, name) => write!(f, ".{}", quoted_name(name))?,
            Field::Intrinsic(intrinsic) => write!(f, "{}", intrinsic.name())?,
        }
        write!(f, " {} ", self.op.symbol())?;
        match &self.value {
            Literal::String(text) => write!(f, "{}", quote(text)),
            Literal::Int(value) => write!(f, "{value}"),
            Literal::Float(value) => write!(f, "{value:?}"),
            Literal::Bool(value) => write!(f, "{value}"),
            Literal::Duration(nanos) => write!(f, "{nanos}ns"),
            Literal::Status(status) => {
                write!(f, "{}", STATUS_VALUES.iter().find(|(_, s)| s == status).map_or("", |(n, _)| n))
            }
            Literal::Kind(kind) => write!(f, "{}", KIND_VALUES.iter().find(|(_, k)| k == kind).map_or("", |(n, _)| n)),
        }
    }
}

fn quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn quoted_name(name: &str) -> String {
    let plain =
        !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':' | '@'));
    if plain { name.to_string() } else { quote(name) }
}

/// What a span's conditions may ask of its trace.
#[derive(Debug, Clone, Default)]
pub struct TraceFacts {
    pub duration_nanos: i64,
    pub root_name: Option<String>,
    pub root_service: Option<String>,
}

/// A span with its resource's attributes and its trace's facts, as a condition sees it.
#[derive(Clone, Copy)]
pub struct SpanContext<'a> {
    pub span: &'a Span,
    pub resource: &'a [KeyValue],
    pub trace: &'a TraceFacts,
}

/// A value a condition compares.
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    String(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Duration(i64),
    Status(StatusValue),
    Kind(KindValue),
}

fn attribute<'a>(attributes: &'a [KeyValue], name: &str) -> Option<&'a AnyValue> {
    attributes.iter().find(|kv| kv.key == name).and_then(|kv| kv.value.as_ref())
}

fn any_value(value: &AnyValue) -> Option<Value<'_>> {
    match value.value.as_ref()? {
        any_value::Value::StringValue(text) => Some(Value::String(text)),
        any_value::Value::IntValue(int) => Some(Value::Int(*int)),
        any_value::Value::DoubleValue(float) => Some(Value::Float(*float)),
        any_value::Value::BoolValue(boolean) => Some(Value::Bool(*boolean)),
        _ => None,
    }
}

/// A span's status as TraceQL names it.
pub fn status_of(span: &Span) -> StatusValue {
    match span.status.as_ref().map(|s| StatusCode::try_from(s.code)) {
        Some(Ok(StatusCode::Error)) => StatusValue::Error,
        Some(Ok(StatusCode::Ok)) => StatusValue::Ok,
        _ => StatusValue::Unset,
    }
}

fn kind_of(span: &Span) -> KindValue {
    match SpanKind::try_from(span.kind) {
        Ok(SpanKind::Internal) => KindValue::Internal,
        Ok(SpanKind::Server) => KindValue::Server,
        Ok(SpanKind::Client) => KindValue::Client,
        Ok(SpanKind::Producer) => KindValue::Producer,
        Ok(SpanKind::Consumer) => KindValue::Consumer,
        _ => KindValue::Unspecified,
    }
}

impl Condition {
    fn value_in<'a>(&self, context: SpanContext<'a>) -> Option<Value<'a>> {
        let span = context.span;
        match &self.field {
            Field::Attribute(AttributeScope::Span, name) => attribute(&span.attributes, name).and_then(any_value),
            Field::Attribute(AttributeScope::Resource, name) => attribute(context.resource, name).and_then(any_value),
            Field::Attribute(AttributeScope::Any, name) => {
                attribute(&span.attributes, name).or_else(|| attribute(context.resource, name)).and_then(any_value)
            }
            Field::Intrinsic(Intrinsic::Name) => Some(Value::String(&span.name)),
            Field::Intrinsic(Intrinsic::Status) => Some(Value::Status(status_of(span))),
            Field::Intrinsic(Intrinsic::Kind) => Some(Value::Kind(kind_of(span))),
            Field::Intrinsic(Intrinsic::Duration) => {
                Some(Value::Duration(span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) as i64))
            }
            Field::Intrinsic(Intrinsic::TraceDuration) => Some(Value::Duration(context.trace.duration_nanos)),
            Field::Intrinsic(Intrinsic::RootName) => context.trace.root_name.as_deref().map(Value::String),
            Field::Intrinsic(Intrinsic::RootServiceName) => context.trace.root_service.as_deref().map(Value::String),
            Field::Intrinsic(Intrinsic::StatusMessage) => {
                Some(Value::String(span.status.as_ref().map_or("", |s| s.message.as_str())))
            }
        }
    }

    /// Whether the condition holds for a span. A missing attribute or a value of another type never
    /// matches (`!=` included), as in Tempo.
    pub fn matches(&self, context: SpanContext<'_>) -> bool {
        let Some(actual) = self.value_in(context) else { return false };
        if let Some(Pattern(regex)) = &self.regex {
            let Value::String(text) = actual else { return false };
            return regex.is_match(text) == (self.op == Op::Re);
        }
        let ordering = match (&actual, &self.value) {
            (Value::String(a), Literal::String(b)) => a.cmp(&b.as_str()),
            (Value::Int(a), Literal::Int(b)) => a.cmp(b),
            (Value::Int(a), Literal::Float(b)) => match (*a as f64).partial_cmp(b) {
                Some(ordering) => ordering,
                None => return false,
            },
            (Value::Float(a), Literal::Int(b)) => match a.partial_cmp(&(*b as f64)) {
                Some(ordering) => ordering,
                None => return false,
            },
            (Value::Float(a), Literal::Float(b)) => match a.partial_cmp(b) {
                Some(ordering) => ordering,
                None => return false,
            },
            (Value::Bool(a), Literal::Bool(b)) => a.cmp(b),
            (Value::Duration(a), Literal::Duration(b) | Literal::Int(b)) => a.cmp(b),
            (Value::Status(a), Literal::Status(b)) => return self.equality(a == b),
            (Value::Kind(a), Literal::Kind(b)) => return self.equality(a == b),
            (Value::Status(a), Literal::String(b)) => {
                return self.equality(STATUS_VALUES.iter().any(|(n, s)| s == a && *n == b.as_str()));
            }
            (Value::Kind(a), Literal::String(b)) => {
                return self.equality(KIND_VALUES.iter().any(|(n, k)| k == a && *n == b.as_str()));
            }
            _ => return false,
        };
        use std::cmp::Ordering::*;
        match self.op {
            Op::Eq => ordering == Equal,
            Op::Ne => ordering != Equal,
            Op::Lt => ordering == Less,
            Op::Le => ordering != Greater,
            Op::Gt => ordering == Greater,
            Op::Ge => ordering != Less,
            Op::Re | Op::NotRe => false,
        }
    }

    fn equality(&self, equal: bool) -> bool {
        match self.op {
            Op::Eq => equal,
            Op::Ne => !equal,
            _ => false,
        }
    }
}

impl Expr {
    pub fn matches(&self, context: SpanContext<'_>) -> bool {
        match self {
            Expr::And(left, right) => left.matches(context) && right.matches(context),
            Expr::Or(left, right) => left.matches(context) || right.matches(context),
            Expr::Condition(condition) => condition.matches(context),
        }
    }

    fn conditions<'a>(&'a self, out: &mut Vec<&'a Condition>) {
        match self {
            Expr::And(left, right) | Expr::Or(left, right) => {
                left.conditions(out);
                right.conditions(out);
            }
            Expr::Condition(condition) => out.push(condition),
        }
    }

    fn conjuncts<'a>(&'a self, out: &mut Vec<&'a Condition>) {
        match self {
            Expr::And(left, right) => {
                left.conjuncts(out);
                right.conjuncts(out);
            }
            Expr::Or(..) => {}
            Expr::Condition(condition) => out.push(condition),
        }
    }
}

/// What the trace index can pre-filter on: conditions every matching trace must meet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexHints {
    pub service: Option<String>,
    pub root_service: Option<String>,
    pub root_name: Option<String>,
    pub has_error: bool,
    pub min_trace_duration_nanos: Option<i64>,
    pub max_trace_duration_nanos: Option<i64>,
}

impl Query {
    /// Whether a span passes the filter.
    pub fn matches_span(&self, context: SpanContext<'_>) -> bool {
        self.filter.as_ref().is_none_or(|filter| filter.matches(context))
    }

    /// Every condition of the query, in order.
    pub fn conditions(&self) -> Vec<&Condition> {
        let mut out = Vec::new();
        if let Some(filter) = &self.filter {
            filter.conditions(&mut out);
        }
        out
    }

    /// The attribute names the query reads, with their scope.
    pub fn attributes(&self) -> Vec<(AttributeScope, &str)> {
        let mut names: Vec<(AttributeScope, &str)> = Vec::new();
        for condition in self.conditions() {
            if let Field::Attribute(scope, name) = &condition.field
                && !names.iter().any(|(s, n)| s == scope && n == name)
            {
                names.push((*scope, name));
            }
        }
        names
    }

    /// Pre-filters from the top-level `&&` conditions (an `||` anywhere above a condition keeps it out).
    pub fn index_hints(&self) -> IndexHints {
        let mut conjuncts = Vec::new();
        if let Some(filter) = &self.filter {
            filter.conjuncts(&mut conjuncts);
        }
        let mut hints = IndexHints::default();
        for condition in conjuncts {
            match (&condition.field, condition.op, &condition.value) {
                (Field::Attribute(AttributeScope::Resource, name), Op::Eq, Literal::String(value))
                    if name == "service.name" =>
                {
                    hints.service = Some(value.clone());
                }
                (Field::Intrinsic(Intrinsic::RootServiceName), Op::Eq, Literal::String(value)) => {
                    hints.root_service = Some(value.clone());
                }
                (Field::Intrinsic(Intrinsic::RootName), Op::Eq, Literal::String(value)) => {
                    hints.root_name = Some(value.clone());
                }
                (Field::Intrinsic(Intrinsic::Status), Op::Eq, Literal::Status(StatusValue::Error)) => {
                    hints.has_error = true;
                }
                (Field::Intrinsic(Intrinsic::TraceDuration), op, Literal::Duration(nanos) | Literal::Int(nanos)) => {
                    match op {
                        Op::Gt | Op::Ge => hints.min_trace_duration_nanos = Some(*nanos),
                        Op::Lt | Op::Le => hints.max_trace_duration_nanos = Some(*nanos),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        hints
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::Status;
    use proptest::prelude::*;

    fn check(text: &str, expect: &str) {
        match parse(text) {
            Ok(query) => assert_eq!(query.to_string(), expect, "{text}"),
            Err(error) => assert_eq!(format!("error: {}", error.message), expect, "{text}"),
        }
    }

    #[test]
    fn parses_what_grafanas_search_builder_writes() {
        check("{}", "{}");
        check("", "{}");
        check("{ }", "{}");
        check(
            r#"{resource.service.name="checkout" && status=error}"#,
            r#"{ (resource.service.name = "checkout" && status = error) }"#,
        );
        check(
            r#"{span.http.method =~ "GET|POST" && duration > 100ms}"#,
            r#"{ (span.http.method =~ "GET|POST" && duration > 100000000ns) }"#,
        );
        check(r#"{.http.status_code >= 500}"#, r#"{ .http.status_code >= 500 }"#);
        check(
            r#"{(name = "a" || name != "b") && kind = server}"#,
            r#"{ ((name = "a" || name != "b") && kind = server) }"#,
        );
        check("{traceDuration>1.5s}", "{ traceDuration > 1500000000ns }");
        check(
            r#"{rootName="GET /" && rootServiceName!~"x.*"}"#,
            r#"{ (rootName = "GET /" && rootServiceName !~ "x.*") }"#,
        );
        check(r#"{statusMessage="boom \"x\""}"#, r#"{ statusMessage = "boom \"x\"" }"#);
        check(
            "{span.retry=true && span.ratio<=0.5 && span.n<-3}",
            "{ ((span.retry = true && span.ratio <= 0.5) && span.n < -3) }",
        );
        check("{duration >= 2m && duration < 1h}", "{ (duration >= 120000000000ns && duration < 3600000000000ns) }");
        check("{duration > 10us && duration<5µs}", "{ (duration > 10000ns && duration < 5000ns) }");
        check(
            r#"{a || b}"#,
            "error: unknown intrinsic `a` (supported: name, status, kind, duration, traceDuration, rootName, rootServiceName, statusMessage)",
        );
    }

    #[test]
    fn refuses_what_it_does_not_support_and_names_it() {
        check("{} | count() > 2", r#"error: pipelines and aggregates (`| …`) are not supported: "| count() > 2""#);
        check(
            "{ .a = 1 } >> { .b = 2 }",
            r#"error: structural operators (`>>`, `>`, `~`, `<<`, `<`) are not supported: ">> { .b = 2 }""#,
        );
        check(
            "{ .a = 1 } && { .b = 2 }",
            r#"error: spanset operators (`{…} && {…}`, `{…} || {…}`) are not supported: "&& { .b = 2 }""#,
        );
        check("{ event.name = \"x\" }", "error: the scope `event.` is not supported (use resource., span. or .attr)");
        check("{ span:id = \"x\" }", "error: the scope `span:` is not supported (use resource., span. or .attr)");
        check("{ .a }", "error: a field alone (existence checks) is not supported: compare it with a value");
        check("{ .a = nil }", "error: `nil` is not supported");
        check("{ .a = foo }", "error: invalid value `foo` (strings need double quotes)");
        check("{ .a =~ 3 }", "error: `=~` needs a string");
        assert!(parse("{ .a =~ \"(\" }").unwrap_err().message.starts_with("invalid regular expression \"(\""));
        check("{ .a = \"x }", "error: unterminated string");
        check("{ .a = 1", "error: expected `&&`, `||` or `}`, found the end");
        check("max(duration)", "error: a query starts with `{`, found \"max(duration)\"");
        check("{ !(.a = 1) }", "error: negation `!(…)` is not supported");
        check("{ (.a = 1 }", "error: expected `)`, found \"}\"");
    }

    fn span(name: &str, status: StatusCode, kind: SpanKind, millis: u64, attributes: Vec<KeyValue>) -> Span {
        Span {
            name: name.into(),
            kind: kind as i32,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 1_000 + millis * 1_000_000,
            status: Some(Status { code: status as i32, message: "boom".into() }),
            attributes,
            ..Default::default()
        }
    }

    fn string(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
            ..Default::default()
        }
    }

    fn int(key: &str, value: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }),
            ..Default::default()
        }
    }

    #[test]
    fn evaluates_conditions_on_a_span() {
        let resource = vec![string("service.name", "checkout"), string("region", "eu")];
        let span = span(
            "GET /cart",
            StatusCode::Error,
            SpanKind::Server,
            250,
            vec![int("http.status_code", 503), string("region", "us")],
        );
        let trace = TraceFacts {
            duration_nanos: 2_000_000_000,
            root_name: Some("GET /cart".into()),
            root_service: Some("web".into()),
        };
        let context = SpanContext { span: &span, resource: &resource, trace: &trace };
        let holds = |text: &str| parse(text).unwrap().matches_span(context);
        assert!(holds("{}"));
        assert!(holds(r#"{resource.service.name = "checkout" && status = error}"#));
        assert!(holds(r#"{.region = "us" && resource.region = "eu" && span.region != "eu"}"#));
        assert!(holds(r#"{.http.status_code >= 500 && .http.status_code < 600.5}"#));
        assert!(holds(r#"{name =~ "GET .*" && name !~ "POST.*" && kind = server && statusMessage = "boom"}"#));
        assert!(holds("{duration > 200ms && duration <= 250ms && traceDuration >= 2s}"));
        assert!(holds(r#"{rootName = "GET /cart" && rootServiceName = "web"}"#));
        assert!(holds(r#"{.missing = "x" || status = error}"#));
        assert!(!holds(r#"{.missing != "x"}"#), "a missing attribute never matches");
        assert!(!holds(r#"{.http.status_code = "503"}"#), "another type never matches");
        assert!(!holds(r#"{name =~ "GET"}"#), "regular expressions are anchored");
        assert!(!holds("{status = ok || kind = client}"));
    }

    #[test]
    fn index_hints_come_from_top_level_conjunctions_only() {
        let hints = parse(r#"{resource.service.name="x" && status=error && traceDuration > 1s && rootName = "r"}"#)
            .unwrap()
            .index_hints();
        assert_eq!(
            hints,
            IndexHints {
                service: Some("x".into()),
                root_name: Some("r".into()),
                has_error: true,
                min_trace_duration_nanos: Some(1_000_000_000),
                ..Default::default()
            }
        );
        assert_eq!(
            parse(r#"{resource.service.name="x" || status=error}"#).unwrap().index_hints(),
            IndexHints::default()
        );
    }

    fn field() -> impl Strategy<Value = Field> {
        let name = "[a-z][a-z0-9_.]{0,8}|\"[ -~]{0,6}\"".prop_map(|n| n.trim_matches('"').to_string());
        prop_oneof![
            (prop_oneof![Just(AttributeScope::Resource), Just(AttributeScope::Span), Just(AttributeScope::Any)], name)
                .prop_map(|(scope, name)| Field::Attribute(scope, name)),
            (0..Intrinsic::ALL.len()).prop_map(|i| Field::Intrinsic(Intrinsic::ALL[i].1)),
        ]
    }

    fn condition() -> impl Strategy<Value = Condition> {
        let literal = prop_oneof![
            "[ -~\\n\\t]{0,8}".prop_map(Literal::String),
            any::<i64>().prop_map(Literal::Int),
            (-1e9f64..1e9).prop_map(|f| Literal::Float((f * 1000.0).round() / 1000.0)),
            any::<bool>().prop_map(Literal::Bool),
            (0i64..1_000_000_000_000).prop_map(Literal::Duration),
            (0..STATUS_VALUES.len()).prop_map(|i| Literal::Status(STATUS_VALUES[i].1)),
            (0..KIND_VALUES.len()).prop_map(|i| Literal::Kind(KIND_VALUES[i].1)),
        ];
        (field(), 0..Op::ALL.len(), literal).prop_map(|(field, op, value)| {
            let op = Op::ALL[op].1;
            let (op, value) = match (&op, &value) {
                (Op::Re | Op::NotRe, _) => (op, Literal::String("[a-z]+|x".into())),
                _ => (op, value),
            };
            let regex = matches!(op, Op::Re | Op::NotRe).then(|| Pattern(regex::Regex::new("^(?:[a-z]+|x)$").unwrap()));
            Condition { field, op, value, regex }
        })
    }

    fn expr() -> impl Strategy<Value = Expr> {
        condition().prop_map(Expr::Condition).prop_recursive(4, 16, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::And(Box::new(l), Box::new(r))),
                (inner.clone(), inner).prop_map(|(l, r)| Expr::Or(Box::new(l), Box::new(r))),
            ]
        })
    }

    proptest! {
        #[test]
        fn printed_queries_parse_back_to_themselves(filter in proptest::option::of(expr())) {
            let query = Query { filter };
            let printed = query.to_string();
            prop_assert_eq!(parse(&printed), Ok(query), "{}", printed);
        }

        #[test]
        fn any_text_parses_or_fails_without_panicking(text in "\\PC{0,40}") {
            let _ = parse(&text);
        }

        #[test]
        fn braced_noise_fails_with_an_offset_inside_the_text(text in "\\{[ -~]{0,30}") {
            if let Err(error) = parse(&text) {
                prop_assert!(error.offset <= text.len());
            }
        }
    }
}
