// `Json<T>`: the type T as it is written in a JSON file. @grafana/schema
// declares some fields as string enums (`FieldColorModeId`,
// `ThresholdsMode`, `MappingType`, ...), and TypeScript does not accept the
// string "thresholds" where `FieldColorModeId.Thresholds` is expected,
// although it is that very value. `Json<T>` replaces each string enum by the
// union of its values (`${E}`) and leaves everything else as it is: required
// and optional fields, numeric enums, literal unions and index signatures, so
// the object literal assigned to it still gets TypeScript's full checks,
// excess properties included.
export type Json<T> =
  0 extends 1 & T ? T // any
  : T extends string ? `${T}`
  : T extends number | boolean | null | undefined ? T
  : T extends ReadonlyArray<infer U> ? Array<Json<U>>
  : T extends object ? { [K in keyof T]: Json<T[K]> }
  : T;

// A dashboard whose annotation queries may carry the Prometheus data
// source's fields. @grafana/schema types an annotation query with only the
// fields common to every data source; the Prometheus plugin reads these
// beside them (its `prepareAnnotation` moves `expr` and `step` into the
// query target when the dashboard loads). Everything else is checked as the
// schema's `Dashboard`.
import type { AnnotationQuery, Dashboard } from '@grafana/schema';

export interface PrometheusAnnotationFields {
  expr?: string;
  step?: string;
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
}

export type KmonDashboard = Omit<Dashboard, 'annotations'> & {
  annotations?: { list?: Array<AnnotationQuery & PrometheusAnnotationFields> };
};
