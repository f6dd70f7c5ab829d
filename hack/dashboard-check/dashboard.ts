// The strictest sound type for llmfleet's Grafana dashboards, built from Grafana's generated
// schema (@grafana/schema). Its `Dashboard` types a panel's `options`, `targets` and
// `fieldConfig.defaults.custom` as `Record<string, unknown>`, so a misspelled key there is
// accepted. Here each panel kind the dashboards use is a member of a union discriminated by
// `type`, with the options and field config its panel plugin declares in the same package,
// and every query is a Prometheus query. Object literals checked with `satisfies` get excess
// property checks at every level: an unknown key or a wrong value type anywhere fails.
// A panel kind not listed in LLMFleetPanel fails as an unknown `type`: add it with its
// plugin's types from @grafana/schema.
import type {
  Dashboard,
  DataQuery,
  DataSourceRef,
  FieldConfig,
  FieldConfigSource,
  Panel,
  RowPanel,
} from '@grafana/schema';
import type * as bargauge from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type * as stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as timeseries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

// JSON spells an enum member by its value: a string enum becomes the union of its values
// (`ThresholdsMode` accepts "absolute"), as Grafana reads it. Numeric enums accept numbers.
type Json<T> = T extends string
  ? `${T}`
  : T extends ReadonlyArray<infer E>
    ? Array<Json<E>>
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

// A saved dashboard holds only the options that differ from the plugin's defaults.
type JsonPartial<T> = T extends string
  ? `${T}`
  : T extends ReadonlyArray<infer E>
    ? Array<JsonPartial<E>>
    : T extends object
      ? { [K in keyof T]?: JsonPartial<T[K]> }
      : T;

// Grafana's Prometheus query model (the PrometheusDataQuery kind); @grafana/schema no longer
// ships it since the data source moved to its own package.
export interface PrometheusQuery extends Omit<DataQuery, 'datasource'> {
  datasource?: DataSourceRef;
  editorMode?: 'code' | 'builder';
  exemplar?: boolean;
  expr: string;
  format?: 'time_series' | 'table' | 'heatmap';
  instant?: boolean;
  interval?: string;
  intervalFactor?: number;
  intervalMs?: number;
  legendFormat?: string;
  range?: boolean;
}

type StrictPanel<Type extends string, Options, Custom> = Json<
  Omit<Panel, 'type' | 'options' | 'fieldConfig' | 'targets'>
> & {
  type: Type;
  options?: JsonPartial<Options>;
  fieldConfig?: Json<Omit<FieldConfigSource, 'defaults'>> & {
    defaults: Json<Omit<FieldConfig, 'custom'>> & { custom?: JsonPartial<Custom> };
  };
  targets?: Array<Json<PrometheusQuery>>;
};

// Panels without custom field options (stat, bargauge) take none.
type NoCustom = Record<string, never>;

export type LLMFleetPanel =
  | StrictPanel<'timeseries', timeseries.Options, timeseries.FieldConfig>
  | StrictPanel<'stat', stat.Options, NoCustom>
  | StrictPanel<'table', table.Options, table.FieldConfig>
  | StrictPanel<'bargauge', bargauge.Options, NoCustom>;

// A collapsed row holds its panels.
export type LLMFleetRow = Json<Omit<RowPanel, 'panels'>> & { panels: LLMFleetPanel[] };

export type StrictDashboard = Json<Omit<Dashboard, 'panels'>> & {
  panels?: Array<LLMFleetPanel | LLMFleetRow>;
};
