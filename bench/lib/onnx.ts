/**
 * A minimal ONNX writer: the ModelProto subset in ../onnx/onnx-subset.proto, encoded with
 * protobufjs, plus helpers to declare tensors, nodes and graph inputs/outputs. There is no Python
 * `onnx` package here, so the bench's models are written from Node with this.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const PROTO_FILE = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '../onnx/onnx-subset.proto',
);

/** TensorProto.DataType values used here. */
export const DataType = {
  FLOAT: 1,
  INT8: 3,
  INT64: 7,
} as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

const AttributeType = { FLOAT: 1, INT: 2, INTS: 7 } as const;

export interface TensorProto {
  name: string;
  dims: number[];
  data_type: DataTypeId;
  raw_data: Uint8Array;
}

export interface AttributeProto {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  floats?: number[];
  ints?: number[];
}

export interface NodeProto {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute: AttributeProto[];
}

export interface ValueInfoProto {
  name: string;
  type: {
    tensor_type: {
      elem_type: DataTypeId;
      shape: { dim: ({ dim_value: number } | { dim_param: string })[] };
    };
  };
}

export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
}

export interface ModelProto {
  ir_version: number;
  producer_name: string;
  producer_version: string;
  doc_string?: string;
  graph: GraphProto;
  opset_import: { domain: string; version: number }[];
}

let modelType: protobuf.Type | null = null;

function modelProtoType(): protobuf.Type {
  if (!modelType) {
    const root = protobuf.parse(readFileSync(PROTO_FILE, 'utf8'), { keepCase: true }).root;
    modelType = root.lookupType('onnx.ModelProto');
  }
  return modelType;
}

/** Serialises a model to ONNX protobuf bytes. */
export function encodeModel(model: ModelProto): Uint8Array {
  const type = modelProtoType();
  const problem = type.verify(model);
  if (problem) throw new Error(`invalid ONNX model: ${problem}`);
  return type.encode(model).finish();
}

/** Parses ONNX protobuf bytes (for tests and inspection); int64 fields come back as numbers. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  const type = modelProtoType();
  return type.toObject(type.decode(bytes), {
    longs: Number,
    bytes: Uint8Array,
    defaults: false,
    arrays: true,
  }) as ModelProto;
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

export function floatTensor(name: string, dims: number[], data: Float32Array): TensorProto {
  checkSize(name, dims, data.length);
  return { name, dims, data_type: DataType.FLOAT, raw_data: bytesOf(data) };
}

export function int8Tensor(name: string, dims: number[], data: Int8Array): TensorProto {
  checkSize(name, dims, data.length);
  return { name, dims, data_type: DataType.INT8, raw_data: bytesOf(data) };
}

export function int64Tensor(name: string, dims: number[], values: readonly number[]): TensorProto {
  checkSize(name, dims, values.length);
  return {
    name,
    dims,
    data_type: DataType.INT64,
    raw_data: bytesOf(BigInt64Array.from(values.map((v) => BigInt(v)))),
  };
}

function checkSize(name: string, dims: number[], length: number): void {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (expected !== length) {
    throw new Error(
      `tensor ${name}: dims [${dims.join(', ')}] need ${expected} values, got ${length}`,
    );
  }
}

export type AttrValue = { int: number } | { float: number } | { ints: number[] };

function attribute(name: string, value: AttrValue): AttributeProto {
  if ('int' in value) return { name, type: AttributeType.INT, i: value.int };
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  return { name, type: AttributeType.INTS, ints: value.ints };
}

/** Graph-building helper: nodes get unique names; initializers are collected in one place. */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private counter = 0;

  /** Adds a node and returns its output names (one unless `outputs` says otherwise). */
  op(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    outputs = 1,
  ): string[] {
    const id = `${opType}_${this.counter++}`;
    const out = Array.from({ length: outputs }, (_, i) => `${id}_out${i}`);
    this.nodes.push({
      name: id,
      op_type: opType,
      input: inputs,
      output: out,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  /** Like `op`, for the common single-output case. */
  op1(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.op(opType, inputs, attrs)[0] as string;
  }

  /** Registers an initializer and returns its name. */
  init(tensor: TensorProto): string {
    this.initializers.push(tensor);
    return tensor.name;
  }

  /** Renames the output of the last node (to give a graph output its public name). */
  renameLastOutput(name: string): void {
    const last = this.nodes.at(-1);
    if (!last) throw new Error('no node to rename');
    last.output[0] = name;
  }
}

export function valueInfo(
  name: string,
  elemType: DataTypeId,
  dims: (number | string)[],
): ValueInfoProto {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })),
        },
      },
    },
  };
}

export function buildModel(options: {
  graphName: string;
  builder: GraphBuilder;
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  opset: number;
  docString?: string;
}): ModelProto {
  return {
    ir_version: 8,
    producer_name: 'heimdex-bench',
    producer_version: '1',
    ...(options.docString ? { doc_string: options.docString } : {}),
    graph: {
      name: options.graphName,
      node: options.builder.nodes,
      initializer: options.builder.initializers,
      input: options.inputs,
      output: options.outputs,
    },
    opset_import: [{ domain: '', version: options.opset }],
  };
}
