//! Projects: every stored record belongs to exactly one (shared/DESIGN.md section 8). A [`Project`] is a
//! validated name; the server takes it only from the request's credential, and every store method that
//! reads or writes data takes one, so data of one project is never seen through another.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A project name: 1–64 characters of `[a-z0-9_-]`, starting with a letter or a digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Project(String);

impl Project {
    /// The project every store has from the start, and the one data written before projects belongs to.
    pub const DEFAULT_NAME: &'static str = "default";
    /// Longest name.
    pub const MAX_LEN: usize = 64;

    /// Validates a name; the error says what is wrong with it.
    pub fn new(name: &str) -> Result<Project, String> {
        if name.is_empty() {
            return Err("a project name cannot be empty".into());
        }
        if name.len() > Self::MAX_LEN {
            return Err(format!("project name {name:?} is longer than {} characters", Self::MAX_LEN));
        }
        if let Some(bad) =
            name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
        {
            return Err(format!(
                "project name {name:?} contains {bad:?}: only lowercase letters, digits, '_' and '-' are allowed"
            ));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return Err(format!("project name {name:?} must start with a lowercase letter or a digit"));
        }
        Ok(Project(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the `default` project.
    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT_NAME
    }
}

impl Default for Project {
    fn default() -> Self {
        Project(Self::DEFAULT_NAME.to_string())
    }
}

impl std::fmt::Display for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Project {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Project::new(name)
    }
}

impl AsRef<str> for Project {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Project {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Project {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Project::new(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expect: Result<(), &str>) {
        match (Project::new(name), expect) {
            (Ok(project), Ok(())) => assert_eq!(project.as_str(), name),
            (Err(message), Err(part)) => assert!(message.contains(part), "{name:?}: {message}"),
            (got, expect) => panic!("{name:?}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn names_are_validated() {
        check("default", Ok(()));
        check("shop-2_eu", Ok(()));
        check("0team", Ok(()));
        check(&"a".repeat(64), Ok(()));
        check("", Err("empty"));
        check(&"a".repeat(65), Err("longer than 64"));
        check("Shop", Err("'S'"));
        check("a b", Err("' '"));
        check("café", Err("'é'"));
        check("-shop", Err("must start"));
        check("_shop", Err("must start"));
        assert_eq!(Project::default().as_str(), Project::DEFAULT_NAME);
        assert!(Project::default().is_default());
        assert_eq!(Project::new("shop").unwrap().to_string(), "shop");
        assert_eq!("shop".parse::<Project>().unwrap(), Project::new("shop").unwrap());
    }

    #[test]
    fn serde_is_a_validated_string() {
        let project = Project::new("shop").unwrap();
        assert_eq!(serde_json::to_string(&project).unwrap(), "\"shop\"");
        assert_eq!(serde_json::from_str::<Project>("\"shop\"").unwrap(), project);
        let error = serde_json::from_str::<Project>("\"Bad Name\"").unwrap_err();
        assert!(error.to_string().contains("only lowercase"), "{error}");
    }
}
