//! Page sizes of the list use cases. A size outside the allowed range is refused with
//! `invalid_limit` rather than quietly changed: a caller asking for 0 or 5000 rows has a bug, and
//! answering with 1 or 200 rows instead would hide it.

use crate::ServiceError;

/// The allowed range (1 to `max`) and default of one kind of list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize {
    pub default: u32,
    pub max: u32,
}

impl PageSize {
    /// Apps, grants, webhook deliveries.
    pub const LIST: PageSize = PageSize { default: 50, max: 200 };
    /// The audit log.
    pub const AUDIT: PageSize = PageSize { default: 100, max: 1000 };

    /// The page size to use: the requested one if it is within 1..=max, the default if none.
    pub fn resolve(self, requested: Option<u32>) -> Result<u32, ServiceError> {
        match requested {
            None => Ok(self.default),
            Some(limit) if (1..=self.max).contains(&limit) => Ok(limit),
            Some(_) => Err(ServiceError::invalid(
                "invalid_limit",
                format!("`limit` must be between 1 and {} (default {})", self.max, self.default),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PageSize;

    #[test]
    fn sizes_outside_the_range_are_refused_not_clamped() {
        assert_eq!(PageSize::LIST.resolve(None).unwrap(), 50);
        assert_eq!(PageSize::LIST.resolve(Some(1)).unwrap(), 1);
        assert_eq!(PageSize::LIST.resolve(Some(200)).unwrap(), 200);
        assert_eq!(PageSize::AUDIT.resolve(Some(1000)).unwrap(), 1000);
        for (size, limit) in [(PageSize::LIST, 0), (PageSize::LIST, 201), (PageSize::AUDIT, 0), (PageSize::AUDIT, 1001)]
        {
            let err = size.resolve(Some(limit)).unwrap_err();
            assert!(matches!(err, crate::ServiceError::Invalid { code: "invalid_limit", .. }), "{limit}: {err:?}");
            assert!(err.to_string().contains(&format!("between 1 and {}", size.max)), "{err}");
        }
    }
}
