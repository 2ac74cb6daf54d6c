//! Magento's `searchCriteria` query: filter groups (AND) of filters (OR), sort orders, paging.

/// A condition of a filter, as Magento names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Eq,
    Neq,
    Gt,
    Gteq,
    Lt,
    Lteq,
    Like,
    In,
    Nin,
    Null,
    NotNull,
    From,
    To,
    Finset,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Eq => "eq",
            Condition::Neq => "neq",
            Condition::Gt => "gt",
            Condition::Gteq => "gteq",
            Condition::Lt => "lt",
            Condition::Lteq => "lteq",
            Condition::Like => "like",
            Condition::In => "in",
            Condition::Nin => "nin",
            Condition::Null => "null",
            Condition::NotNull => "notnull",
            Condition::From => "from",
            Condition::To => "to",
            Condition::Finset => "finset",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub field: String,
    pub condition: Condition,
    pub value: String,
}

impl Filter {
    pub fn new(field: &str, condition: Condition, value: impl Into<String>) -> Filter {
        Filter {
            field: field.to_string(),
            condition,
            value: value.into(),
        }
    }
}

/// Builds the query. Magento ANDs the groups and ORs the filters inside a group.
#[derive(Clone, Debug, Default)]
pub struct SearchCriteria {
    groups: Vec<Vec<Filter>>,
    sort: Vec<(String, bool)>,
    page_size: Option<u32>,
    current_page: Option<u32>,
}

/// Magento's largest useful page; larger pages are slow on real stores.
pub const MAX_PAGE_SIZE: u32 = 300;

impl SearchCriteria {
    pub fn new() -> SearchCriteria {
        SearchCriteria::default()
    }

    /// ANDs one condition with the others.
    pub fn and(mut self, filter: Filter) -> SearchCriteria {
        self.groups.push(vec![filter]);
        self
    }

    /// ANDs a group that matches when any of `filters` matches.
    pub fn and_any_of(mut self, filters: Vec<Filter>) -> SearchCriteria {
        self.groups.push(filters);
        self
    }

    pub fn sort_ascending(mut self, field: &str) -> SearchCriteria {
        self.sort.push((field.to_string(), true));
        self
    }

    pub fn sort_descending(mut self, field: &str) -> SearchCriteria {
        self.sort.push((field.to_string(), false));
        self
    }

    /// Page `page` (from 1) of `size` records (at most [`MAX_PAGE_SIZE`]).
    pub fn page(mut self, size: u32, page: u32) -> SearchCriteria {
        self.page_size = Some(size.clamp(1, MAX_PAGE_SIZE));
        self.current_page = Some(page.max(1));
        self
    }

    /// The query pairs, unencoded (the client encodes them).
    pub fn to_query(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            for (f, filter) in group.iter().enumerate() {
                let prefix = format!("searchCriteria[filter_groups][{g}][filters][{f}]");
                q.push((format!("{prefix}[field]"), filter.field.clone()));
                q.push((format!("{prefix}[value]"), filter.value.clone()));
                q.push((
                    format!("{prefix}[condition_type]"),
                    filter.condition.as_str().to_string(),
                ));
            }
        }
        for (i, (field, ascending)) in self.sort.iter().enumerate() {
            q.push((
                format!("searchCriteria[sortOrders][{i}][field]"),
                field.clone(),
            ));
            q.push((
                format!("searchCriteria[sortOrders][{i}][direction]"),
                if *ascending { "ASC" } else { "DESC" }.to_string(),
            ));
        }
        if let Some(size) = self.page_size {
            q.push(("searchCriteria[pageSize]".into(), size.to_string()));
        }
        if let Some(page) = self.current_page {
            q.push(("searchCriteria[currentPage]".into(), page.to_string()));
        }
        if q.is_empty() {
            // Magento requires searchCriteria to be present, even empty. A bare
            // `searchCriteria=` works on Magento but is no parameter the admin schema declares;
            // the first page without a page size is the same query (everything), in declared
            // terms.
            q.push(("searchCriteria[currentPage]".into(), "1".into()));
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_filters_sorts_and_pages_become_magento_parameters() {
        let q = SearchCriteria::new()
            .and(Filter::new(
                "updated_at",
                Condition::Gteq,
                "2026-11-26 10:00:00",
            ))
            .and_any_of(vec![
                Filter::new("status", Condition::Eq, "processing"),
                Filter::new("status", Condition::Eq, "complete"),
            ])
            .sort_ascending("updated_at")
            .sort_ascending("entity_id")
            .page(1000, 0)
            .to_query();
        let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(
            get("searchCriteria[filter_groups][0][filters][0][condition_type]"),
            Some("gteq")
        );
        assert_eq!(
            get("searchCriteria[filter_groups][1][filters][1][value]"),
            Some("complete")
        );
        assert_eq!(
            get("searchCriteria[sortOrders][1][field]"),
            Some("entity_id")
        );
        assert_eq!(get("searchCriteria[pageSize]"), Some("300"));
        assert_eq!(get("searchCriteria[currentPage]"), Some("1"));
    }

    #[test]
    fn empty_criteria_still_send_a_declared_search_criteria_parameter() {
        assert_eq!(
            SearchCriteria::new().to_query(),
            vec![("searchCriteria[currentPage]".to_string(), "1".to_string())]
        );
    }
}
