// MQL5 as the EA uses it, declared for g++ -fsyntax-only (forced in with -include).
//
// Declarations only, with the signatures of the MQL5 reference (www.mql5.com/en/docs): exactly the built-in
// types, structures, enumerations, constants and functions the EA calls, so a misspelled name is undeclared and
// a wrong argument count or type matches no declaration. Where MQL5 takes any array (`void &array[]`) or any
// value (`void &variable`) a template stands for it. Values of constants matter only where they are documented.
// Add a declaration here only when the EA starts using it, with its signature from the reference.
#ifndef MT5B_TEST_MQL5_H
#define MT5B_TEST_MQL5_H

#include <initializer_list>
#ifdef MT5B_RUNTIME
// tests/mql5/runtime/runtime.h gives these declarations bodies, to run the EA's pure includes
#include <string>
#include <vector>
// the C library's macros of the same names as MQL5 constants
#undef SEEK_SET
#undef SEEK_CUR
#undef SEEK_END
#undef ULONG_MAX
#endif

// ---- types ---------------------------------------------------------------------------------------------
typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;   // 64-bit, as MQL5's ulong (g++ on x86-64 Linux: long is 64-bit)
typedef long datetime;         // seconds since 1970
typedef unsigned int color;

// MQL5's string: a value type with + and comparisons; everything else is a free function. No conversion from
// numbers (MQL5 only warns about it; the EA converts with IntegerToString/DoubleToString).
class string
  {
public:
   string();
   string(const char *text);
   string(const string &other);
   string &operator=(const string &other);
   string &operator+=(const string &other);
#ifdef MT5B_RUNTIME
   std::u16string chars;   // MQL5 strings are UTF-16
#endif
  };
string operator+(const string &a,const string &b);
bool operator==(const string &a,const string &b);
bool operator!=(const string &a,const string &b);
bool operator<(const string &a,const string &b);
bool operator>(const string &a,const string &b);

// A dynamic or static MQL5 array of T (see rewrite.py).
template<typename T> class MqlArray
  {
public:
   MqlArray();
   MqlArray(std::initializer_list<T> items);
   T &operator[](long index);
   const T &operator[](long index) const;
#ifdef MT5B_RUNTIME
   std::vector<T> items;
#endif
  };

// ---- structures ----------------------------------------------------------------------------------------
struct MqlDateTime
  {
   int year;
   int mon;
   int day;
   int hour;
   int min;
   int sec;
   int day_of_week;
   int day_of_year;
  };

struct MqlTick
  {
   datetime time;
   double bid;
   double ask;
   double last;
   ulong volume;
   long time_msc;
   uint flags;
   double volume_real;
  };

struct MqlRates
  {
   datetime time;
   double open;
   double high;
   double low;
   double close;
   long tick_volume;
   int spread;
   long real_volume;
  };

// ---- enumerations --------------------------------------------------------------------------------------
enum ENUM_TIMEFRAMES { PERIOD_CURRENT=0, PERIOD_M1=1, PERIOD_M5=5, PERIOD_M15=15, PERIOD_H1=16385 };

enum ENUM_ACCOUNT_INFO_INTEGER
  {
   ACCOUNT_LOGIN, ACCOUNT_TRADE_ALLOWED, ACCOUNT_TRADE_EXPERT, ACCOUNT_MARGIN_MODE
  };
enum ENUM_ACCOUNT_INFO_DOUBLE { ACCOUNT_BALANCE, ACCOUNT_EQUITY, ACCOUNT_MARGIN, ACCOUNT_MARGIN_FREE };
enum ENUM_ACCOUNT_INFO_STRING { ACCOUNT_NAME, ACCOUNT_SERVER, ACCOUNT_CURRENCY, ACCOUNT_COMPANY };
enum ENUM_ACCOUNT_MARGIN_MODE
  {
   ACCOUNT_MARGIN_MODE_RETAIL_NETTING, ACCOUNT_MARGIN_MODE_EXCHANGE, ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
  };

enum ENUM_SYMBOL_INFO_INTEGER
  {
   SYMBOL_DIGITS, SYMBOL_TRADE_STOPS_LEVEL, SYMBOL_TRADE_FREEZE_LEVEL, SYMBOL_FILLING_MODE, SYMBOL_TRADE_MODE,
   SYMBOL_ORDER_MODE, SYMBOL_TRADE_EXEMODE
  };
enum ENUM_SYMBOL_TRADE_EXECUTION
  {
   SYMBOL_TRADE_EXECUTION_REQUEST, SYMBOL_TRADE_EXECUTION_INSTANT, SYMBOL_TRADE_EXECUTION_MARKET,
   SYMBOL_TRADE_EXECUTION_EXCHANGE
  };
enum ENUM_SYMBOL_INFO_DOUBLE
  {
   SYMBOL_BID, SYMBOL_ASK, SYMBOL_POINT, SYMBOL_TRADE_TICK_VALUE, SYMBOL_TRADE_TICK_SIZE,
   SYMBOL_TRADE_CONTRACT_SIZE, SYMBOL_VOLUME_MIN, SYMBOL_VOLUME_MAX, SYMBOL_VOLUME_STEP
  };
enum ENUM_SYMBOL_TRADE_MODE
  {
   SYMBOL_TRADE_MODE_DISABLED, SYMBOL_TRADE_MODE_LONGONLY, SYMBOL_TRADE_MODE_SHORTONLY,
   SYMBOL_TRADE_MODE_CLOSEONLY, SYMBOL_TRADE_MODE_FULL
  };
// SYMBOL_FILLING_MODE and SYMBOL_ORDER_MODE are bit masks of these flags
const int SYMBOL_FILLING_FOK=1;
const int SYMBOL_FILLING_IOC=2;
const int SYMBOL_ORDER_MARKET=1;
const int SYMBOL_ORDER_LIMIT=2;
const int SYMBOL_ORDER_STOP=4;
const int SYMBOL_ORDER_STOP_LIMIT=8;
const int SYMBOL_ORDER_SL=16;
const int SYMBOL_ORDER_TP=32;

enum ENUM_TERMINAL_INFO_INTEGER { TERMINAL_CONNECTED, TERMINAL_DLLS_ALLOWED, TERMINAL_TRADE_ALLOWED };
enum ENUM_MQL_INFO_INTEGER { MQL_DLLS_ALLOWED, MQL_TRADE_ALLOWED, MQL_TESTER };

enum ENUM_ORDER_TYPE { ORDER_TYPE_BUY, ORDER_TYPE_SELL };
enum ENUM_ORDER_TYPE_FILLING { ORDER_FILLING_FOK, ORDER_FILLING_IOC, ORDER_FILLING_RETURN };
enum ENUM_ORDER_TYPE_TIME { ORDER_TIME_GTC, ORDER_TIME_DAY, ORDER_TIME_SPECIFIED, ORDER_TIME_SPECIFIED_DAY };
enum ENUM_ORDER_STATE { ORDER_STATE_STARTED, ORDER_STATE_PLACED, ORDER_STATE_FILLED };
enum ENUM_TRADE_REQUEST_ACTIONS
  {
   TRADE_ACTION_DEAL=1, TRADE_ACTION_PENDING=5, TRADE_ACTION_SLTP=6, TRADE_ACTION_MODIFY=7,
   TRADE_ACTION_REMOVE=8, TRADE_ACTION_CLOSE_BY=10
  };
enum ENUM_TRADE_TRANSACTION_TYPE
  {
   TRADE_TRANSACTION_ORDER_ADD, TRADE_TRANSACTION_ORDER_UPDATE, TRADE_TRANSACTION_ORDER_DELETE,
   TRADE_TRANSACTION_DEAL_ADD, TRADE_TRANSACTION_DEAL_UPDATE, TRADE_TRANSACTION_DEAL_DELETE,
   TRADE_TRANSACTION_HISTORY_ADD, TRADE_TRANSACTION_HISTORY_UPDATE, TRADE_TRANSACTION_HISTORY_DELETE,
   TRADE_TRANSACTION_POSITION, TRADE_TRANSACTION_REQUEST
  };

enum ENUM_POSITION_TYPE { POSITION_TYPE_BUY, POSITION_TYPE_SELL };
enum ENUM_POSITION_PROPERTY_INTEGER
  {
   POSITION_TICKET, POSITION_TIME_MSC, POSITION_TYPE, POSITION_MAGIC, POSITION_IDENTIFIER
  };
enum ENUM_POSITION_PROPERTY_DOUBLE
  {
   POSITION_VOLUME, POSITION_PRICE_OPEN, POSITION_SL, POSITION_TP, POSITION_SWAP, POSITION_PROFIT
  };
enum ENUM_POSITION_PROPERTY_STRING { POSITION_SYMBOL, POSITION_COMMENT };

enum ENUM_DEAL_TYPE { DEAL_TYPE_BUY, DEAL_TYPE_SELL, DEAL_TYPE_BALANCE };
enum ENUM_DEAL_ENTRY { DEAL_ENTRY_IN, DEAL_ENTRY_OUT, DEAL_ENTRY_INOUT, DEAL_ENTRY_OUT_BY };
enum ENUM_DEAL_REASON
  {
   DEAL_REASON_CLIENT, DEAL_REASON_MOBILE, DEAL_REASON_WEB, DEAL_REASON_EXPERT, DEAL_REASON_SL, DEAL_REASON_TP,
   DEAL_REASON_SO, DEAL_REASON_ROLLOVER, DEAL_REASON_VMARGIN, DEAL_REASON_SPLIT
  };
enum ENUM_DEAL_PROPERTY_INTEGER
  {
   DEAL_TICKET, DEAL_ORDER, DEAL_TIME, DEAL_TIME_MSC, DEAL_TYPE, DEAL_ENTRY, DEAL_MAGIC, DEAL_REASON,
   DEAL_POSITION_ID
  };
enum ENUM_DEAL_PROPERTY_DOUBLE
  {
   DEAL_VOLUME, DEAL_PRICE, DEAL_COMMISSION, DEAL_SWAP, DEAL_PROFIT, DEAL_FEE
  };
enum ENUM_DEAL_PROPERTY_STRING { DEAL_SYMBOL, DEAL_COMMENT, DEAL_EXTERNAL_ID };

enum ENUM_FILE_POSITION { SEEK_SET, SEEK_CUR, SEEK_END };

// ---- trade structures ----------------------------------------------------------------------------------
struct MqlTradeRequest
  {
   ENUM_TRADE_REQUEST_ACTIONS action;
   ulong magic;
   ulong order;
   string symbol;
   double volume;
   double price;
   double stoplimit;
   double sl;
   double tp;
   ulong deviation;
   ENUM_ORDER_TYPE type;
   ENUM_ORDER_TYPE_FILLING type_filling;
   ENUM_ORDER_TYPE_TIME type_time;
   datetime expiration;
   string comment;
   ulong position;
   ulong position_by;
  };

struct MqlTradeResult
  {
   uint retcode;
   ulong deal;
   ulong order;
   double volume;
   double price;
   double bid;
   double ask;
   string comment;
   uint request_id;
   int retcode_external;
  };

struct MqlTradeTransaction
  {
   ulong deal;
   ulong order;
   string symbol;
   ENUM_TRADE_TRANSACTION_TYPE type;
   ENUM_ORDER_TYPE order_type;
   ENUM_ORDER_STATE order_state;
   ENUM_DEAL_TYPE deal_type;
   ENUM_ORDER_TYPE_TIME time_type;
   datetime time_expiration;
   double price;
   double price_trigger;
   double price_sl;
   double price_tp;
   double volume;
   ulong position;
   ulong position_by;
  };

// ---- constants -----------------------------------------------------------------------------------------
const int INIT_SUCCEEDED=0;
const int INIT_FAILED=1;
const int INIT_PARAMETERS_INCORRECT=32767;

const int REASON_PROGRAM=0;
const int REASON_REMOVE=1;
const int REASON_RECOMPILE=2;
const int REASON_CHARTCHANGE=3;
const int REASON_CHARTCLOSE=4;
const int REASON_PARAMETERS=5;
const int REASON_ACCOUNT=6;
const int REASON_TEMPLATE=7;
const int REASON_INITFAILED=8;
const int REASON_CLOSE=9;

const uint CP_ACP=0;
const uint CP_UTF8=65001;
const int WHOLE_ARRAY=-1;
const ulong ULONG_MAX=18446744073709551615UL;

const int INVALID_HANDLE=-1;
const int FILE_READ=1;
const int FILE_WRITE=2;
const int FILE_TXT=16;
const int FILE_ANSI=32;
const int FILE_SHARE_READ=128;
const int FILE_REWRITE=512;
const int FILE_COMMON=4096;

const int TIME_DATE=1;
const int TIME_MINUTES=2;
const int TIME_SECONDS=4;

const uint TRADE_RETCODE_REQUOTE=10004;
const uint TRADE_RETCODE_REJECT=10006;
const uint TRADE_RETCODE_CANCEL=10007;
const uint TRADE_RETCODE_PLACED=10008;
const uint TRADE_RETCODE_DONE=10009;
const uint TRADE_RETCODE_DONE_PARTIAL=10010;
const uint TRADE_RETCODE_ERROR=10011;
const uint TRADE_RETCODE_TIMEOUT=10012;
const uint TRADE_RETCODE_INVALID=10013;
const uint TRADE_RETCODE_INVALID_VOLUME=10014;
const uint TRADE_RETCODE_INVALID_PRICE=10015;
const uint TRADE_RETCODE_INVALID_STOPS=10016;
const uint TRADE_RETCODE_TRADE_DISABLED=10017;
const uint TRADE_RETCODE_MARKET_CLOSED=10018;
const uint TRADE_RETCODE_NO_MONEY=10019;
const uint TRADE_RETCODE_PRICE_CHANGED=10020;
const uint TRADE_RETCODE_PRICE_OFF=10021;
const uint TRADE_RETCODE_TOO_MANY_REQUESTS=10024;
const uint TRADE_RETCODE_NO_CHANGES=10025;
const uint TRADE_RETCODE_CLIENT_DISABLES_AT=10027;
const uint TRADE_RETCODE_FROZEN=10029;
const uint TRADE_RETCODE_INVALID_FILL=10030;
const uint TRADE_RETCODE_CONNECTION=10031;
const uint TRADE_RETCODE_POSITION_CLOSED=10036;
const uint TRADE_RETCODE_LONG_ONLY=10042;
const uint TRADE_RETCODE_SHORT_ONLY=10043;
const uint TRADE_RETCODE_CLOSE_ONLY=10044;
const uint TRADE_RETCODE_HEDGE_PROHIBITED=10046;

extern const string _Symbol;

// ---- functions -----------------------------------------------------------------------------------------
// common
template<typename... Args> void Print(const Args &... args);
template<typename... Args> void Alert(const Args &... args);
template<typename... Args> void Comment(const Args &... args);
int GetLastError();
void ResetLastError();
void Sleep(int milliseconds);
bool IsStopped();
ulong GetMicrosecondCount();
ulong GetTickCount64();
template<typename T> void ZeroMemory(T &variable);

// account, terminal, program
long AccountInfoInteger(ENUM_ACCOUNT_INFO_INTEGER property_id);
double AccountInfoDouble(ENUM_ACCOUNT_INFO_DOUBLE property_id);
string AccountInfoString(ENUM_ACCOUNT_INFO_STRING property_id);
int TerminalInfoInteger(int property_id);   // the reference takes an int, not the enumeration
int MQLInfoInteger(int property_id);        // likewise

// symbol
long SymbolInfoInteger(string name,ENUM_SYMBOL_INFO_INTEGER prop_id);
bool SymbolInfoInteger(string name,ENUM_SYMBOL_INFO_INTEGER prop_id,long &long_var);
double SymbolInfoDouble(string name,ENUM_SYMBOL_INFO_DOUBLE prop_id);
bool SymbolInfoDouble(string name,ENUM_SYMBOL_INFO_DOUBLE prop_id,double &double_var);
bool SymbolInfoTick(string symbol,MqlTick &tick);

// date and time
datetime TimeCurrent();
datetime TimeTradeServer();
datetime TimeGMT();
bool TimeToStruct(datetime dt,MqlDateTime &dt_struct);
string TimeToString(datetime value,int mode=TIME_DATE|TIME_MINUTES);
datetime StructToTime(MqlDateTime &dt_struct);

// chart, events
long ChartID();
bool EventSetMillisecondTimer(int milliseconds);
void EventKillTimer();

// trading
bool OrderCalcMargin(ENUM_ORDER_TYPE action,string symbol,double volume,double price,double &margin);
int PositionsTotal();
ulong PositionGetTicket(int index);
bool PositionSelect(string symbol);
bool PositionSelectByTicket(ulong ticket);
long PositionGetInteger(ENUM_POSITION_PROPERTY_INTEGER property_id);
double PositionGetDouble(ENUM_POSITION_PROPERTY_DOUBLE property_id);
string PositionGetString(ENUM_POSITION_PROPERTY_STRING property_id);
bool HistorySelect(datetime from_date,datetime to_date);
bool HistorySelectByPosition(ulong position_id);
int HistoryDealsTotal();
ulong HistoryDealGetTicket(int index);
bool HistoryDealSelect(ulong ticket);
long HistoryDealGetInteger(ulong ticket_number,ENUM_DEAL_PROPERTY_INTEGER property_id);
double HistoryDealGetDouble(ulong ticket_number,ENUM_DEAL_PROPERTY_DOUBLE property_id);
string HistoryDealGetString(ulong ticket_number,ENUM_DEAL_PROPERTY_STRING property_id);

// timeseries
int CopyRates(string symbol_name,ENUM_TIMEFRAMES timeframe,int start_pos,int count,MqlArray<MqlRates> &rates_array);

// math
bool MathIsValidNumber(double number);
double MathAbs(double value);
double MathFloor(double val);
double MathCeil(double val);
double MathRound(double value);
double NormalizeDouble(double value,int digits);

// conversions and strings
string IntegerToString(long number,int str_len=0,ushort fill_symbol=' ');
string DoubleToString(double value,int digits=8);
double StringToDouble(string value);
long StringToInteger(string value);
string ShortToString(ushort symbol_code);
int StringLen(string string_value);
string StringSubstr(string string_value,int start_pos,int length=-1);
int StringFind(string string_value,string match_substring,int start_pos=0);
ushort StringGetCharacter(string string_value,int pos);
int StringCompare(const string &string1,const string &string2,bool case_sensitive=true);
bool StringToUpper(string &string_var);
int StringToCharArray(string text_string,MqlArray<uchar> &array,int start=0,int count=-1,uint codepage=CP_ACP);
string CharArrayToString(const MqlArray<uchar> &array,int start=0,int count=-1,uint codepage=CP_ACP);

// arrays
template<typename T> int ArrayResize(MqlArray<T> &array,int new_size,int reserve_size=0);

// files (sandboxed in MQL5\Files)
bool FolderCreate(string folder_name,int common_flag=0);
bool FileIsExist(const string file_name,int common_flag=0);
int FileOpen(string file_name,int open_flags,short delimiter='\t',uint codepage=CP_ACP);
void FileClose(int file_handle);
bool FileIsEnding(int file_handle);
string FileReadString(int file_handle,int length=-1);
uint FileWriteString(int file_handle,const string text_string,int length=-1);
bool FileSeek(int file_handle,long offset,ENUM_FILE_POSITION origin);
bool FileMove(const string src_file_name,int common_flag,const string dst_file_name,int mode_flags);

#endif // MT5B_TEST_MQL5_H
