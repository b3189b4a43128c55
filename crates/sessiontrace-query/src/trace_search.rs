//! The UI's trace search (`GET /api/traces/search`): the filters a person picks — service, operation,
//! status, trace duration, `key=value` attributes — and an optional TraceQL expression, as one TraceQL
//! [`Query`] for the search engine that also serves Tempo's API ([`crate::search`]). Service, operation,
//! status and attributes are conditions on one span (as in Jaeger and Tempo); the durations bound the
//! whole trace (`traceDuration`).

use crate::jaeger;
use crate::traceql::{self, Condition, Expr, Field, Intrinsic, Literal, Op, Query, StatusValue};

/// What a trace search asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceFilters {
    /// A TraceQL expression (`{ … }`), combined with the other filters by `&&`.
    pub traceql: Option<String>,
    pub service: Option<String>,
    pub operation: Option<String>,
    /// `Some(true)`: a span with status error; `Some(false)`: no span needs to be an error, but the
    /// matching span is not one.
    pub error: Option<bool>,
    pub min_duration_nanos: Option<i64>,
    pub max_duration_nanos: Option<i64>,
    /// `key=value` pairs: a span (or its resource) attribute equal to the value.
    pub attributes: Vec<(String, String)>,
}

fn condition(field: Field, op: Op, value: Literal) -> Expr {
    Expr::Condition(Condition { field, op, value, regex: None })
}

fn and(left: Option<Expr>, right: Expr) -> Option<Expr> {
    Some(match left {
        Some(left) => Expr::And(Box::new(left), Box::new(right)),
        None => right,
    })
}

impl TraceFilters {
    /// The filters as one query; `Err` names what in the TraceQL text is wrong or unsupported.
    pub fn query(&self) -> Result<Query, String> {
        let base =
            jaeger::search_query(self.service.as_deref(), self.operation.as_deref(), &self.attributes, None, None);
        let mut filter = base.filter;
        if let Some(error) = self.error {
            let op = if error { Op::Eq } else { Op::Ne };
            filter =
                and(filter, condition(Field::Intrinsic(Intrinsic::Status), op, Literal::Status(StatusValue::Error)));
        }
        if let Some(min) = self.min_duration_nanos {
            filter = and(filter, condition(Field::Intrinsic(Intrinsic::TraceDuration), Op::Ge, Literal::Duration(min)));
        }
        if let Some(max) = self.max_duration_nanos {
            filter = and(filter, condition(Field::Intrinsic(Intrinsic::TraceDuration), Op::Le, Literal::Duration(max)));
        }
        if let Some(text) = self.traceql.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let parsed = traceql::parse(text).map_err(|e| e.to_string())?;
            if let Some(expr) = parsed.filter {
                filter = and(filter, expr);
            }
        }
        Ok(Query { filter })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_traceql_make_one_query() {
        let filters = TraceFilters {
            traceql: Some(r#"{ span.http.status_code >= 500 }"#.into()),
            service: Some("payment".into()),
            error: Some(true),
            min_duration_nanos: Some(1_000_000),
            ..TraceFilters::default()
        };
        let query = filters.query().unwrap();
        let expected = traceql::parse(
            r#"{ resource.service.name = "payment" && status = error && traceDuration >= 1ms && span.http.status_code >= 500 }"#,
        )
        .unwrap();
        assert_eq!(query, expected);
    }

    #[test]
    fn no_filter_matches_everything_and_bad_traceql_is_refused() {
        assert_eq!(TraceFilters::default().query().unwrap(), Query { filter: None });
        let error = TraceFilters { traceql: Some("{ .a = 1 } | count() > 2".into()), ..Default::default() }
            .query()
            .unwrap_err();
        assert!(error.contains("count") || error.contains('|'), "{error}");
    }
}
