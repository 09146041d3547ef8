//! Smoke tests of the engine on the real embedded catalog (when it loads): realistic requests
//! place, are deterministic, and impossible ones explain themselves. Lenient on purpose: the
//! data is owned by the catalog crate and changes with each snapshot.

use catalog::Compliance;
use placement::*;

#[test]
fn real_catalog_places_and_explains() {
    let Ok(cat) = catalog::try_embedded() else {
        eprintln!("embedded catalog unavailable: skipped");
        return;
    };
    let frankfurt = [UserLocation {
        lat: 50.1,
        lng: 8.7,
        weight: 1.0,
    }];
    let req = Requirements::new(2.0, 8.0)
        .with_compliance(&[Compliance::Gdpr])
        .with_users(&frankfurt);
    for s in [
        Strategy::CostOptimized,
        Strategy::LatencyOptimized,
        Strategy::Hybrid,
    ] {
        let d = place(cat, &[], &req, &s, &PlaceOptions::default())
            .expect("a GDPR 2 vCPU placement exists");
        eprintln!(
            "{s}: {} {} {:?}: {}",
            d.placement.provider, d.placement.region, d.placement.instance_type, d.placement.reason
        );
        let region = cat
            .regions
            .iter()
            .find(|r| r.cloud.as_str() == d.placement.provider && r.code == d.placement.region)
            .expect("winner region is in the catalog");
        assert!(validate_compliance(region, &req).is_empty());
        assert_eq!(
            Ok(&d),
            place(cat, &[], &req, &s, &PlaceOptions::default()).as_ref()
        );
    }
    let impossible = Requirements::new(2.0, 8.0)
        .with_gpu(1, None)
        .with_compliance(&[Compliance::Gdpr])
        .with_budget(0.05);
    let e = place(
        cat,
        &[],
        &impossible,
        &Strategy::CostOptimized,
        &PlaceOptions::default(),
    )
    .expect_err("too cheap");
    eprintln!("{e}");
    assert!(e
        .to_string()
        .starts_with("no placement satisfies the requirements: of "));
}
