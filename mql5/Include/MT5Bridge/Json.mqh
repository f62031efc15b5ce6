//+------------------------------------------------------------------+
//| MT5Bridge/Json.mqh                                               |
//| A small JSON writer and a reader of flat objects: all the wire   |
//| protocol has. Our own, so the trader fetches no third-party file |
//| and we decide escaping, number formats and what "" means.        |
//+------------------------------------------------------------------+
#ifndef MT5B_JSON_MQH
#define MT5B_JSON_MQH

//--- kinds of values the reader keeps
#define JSON_KIND_STRING  1
#define JSON_KIND_NUMBER  2
#define JSON_KIND_TRUE    3
#define JSON_KIND_FALSE   4
#define JSON_KIND_NULL    5
#define JSON_KIND_NESTED  6

//+------------------------------------------------------------------+
//| Two lowercase hex digits of the low byte of a character.         |
//+------------------------------------------------------------------+
string JsonHexByte(const int value)
  {
   string digits="0123456789abcdef";
   return(StringSubstr(digits,(value>>4)&15,1)+StringSubstr(digits,value&15,1));
  }

//+------------------------------------------------------------------+
//| A finite number as JSON: DoubleToString at the given decimals,   |
//| trailing zeros dropped ("1.08500" -> "1.085", "2.00" -> "2").    |
//| A bridge float field takes an integer too; NaN or infinity would |
//| make the whole frame unreadable, so they are written as 0 and    |
//| counted by the writer.                                           |
//+------------------------------------------------------------------+
string JsonNumber(const double value,const int digits)
  {
   if(!MathIsValidNumber(value))
      return("0");
   int decimals=digits;
   if(decimals<0)
      decimals=0;
   if(decimals>16)
      decimals=16;
   string text=DoubleToString(value,decimals);
   if(StringFind(text,".")>=0)
     {
      int end=StringLen(text);
      while(end>0 && StringGetCharacter(text,end-1)=='0')
         end--;
      if(end>0 && StringGetCharacter(text,end-1)=='.')
         end--;
      text=StringSubstr(text,0,end);
     }
   if(text=="-0" || text=="")
      text="0";
   return(text);
  }

//+------------------------------------------------------------------+
//| Writes one JSON object. Keys are the MT5B_F_* names of the       |
//| protocol; every call names its key, so what a message builder    |
//| writes can be read off its source.                               |
//+------------------------------------------------------------------+
class CJsonWriter
  {
private:
   string            m_text;
   bool              m_first;          // nothing written yet in the current object or array
   int               m_bad_numbers;    // NaN or infinity replaced by 0

   void              Separator(void);
   void              WriteKey(const string key);
   void              WriteString(const string value);
   void              WriteNumber(const double value,const int digits);

public:
                     CJsonWriter(void);
   void              Reset(void);
   void              BeginObject(void);
   void              EndObject(void);
   void              BeginArray(const string key);
   void              EndArray(void);
   void              Int(const string key,const long value);
   void              Num(const string key,const double value,const int digits);
   void              Str(const string key,const string value);
   void              Null(const string key);
   void              ItemInt(const long value);
   void              ItemNum(const double value,const int digits);
   string            Text(void) const { return(m_text); }
   int               BadNumbers(void) const { return(m_bad_numbers); }
  };

CJsonWriter::CJsonWriter(void)
  {
   Reset();
  }

void CJsonWriter::Reset(void)
  {
   m_text="";
   m_first=true;
   m_bad_numbers=0;
  }

//--- a comma before every member or item but the first of its container
void CJsonWriter::Separator(void)
  {
   if(!m_first)
      m_text+=",";
   m_first=false;
  }

void CJsonWriter::WriteKey(const string key)
  {
   Separator();
   WriteString(key);
   m_text+=":";
  }

//--- quotes, backslashes and control characters escaped; the rest goes out as UTF-8 when sent
void CJsonWriter::WriteString(const string value)
  {
   m_text+="\"";
   int len=StringLen(value);
   int run=0;
   for(int i=0; i<len; i++)
     {
      ushort c=StringGetCharacter(value,i);
      string escape="";
      if(c=='"')
         escape="\\\"";
      else if(c=='\\')
         escape="\\\\";
      else if(c=='\n')
         escape="\\n";
      else if(c=='\r')
         escape="\\r";
      else if(c=='\t')
         escape="\\t";
      else if(c<0x20)
         escape="\\u00"+JsonHexByte(c);
      if(escape!="")
        {
         if(i>run)
            m_text+=StringSubstr(value,run,i-run);
         m_text+=escape;
         run=i+1;
        }
     }
   if(len>run)
      m_text+=StringSubstr(value,run,len-run);
   m_text+="\"";
  }

void CJsonWriter::WriteNumber(const double value,const int digits)
  {
   if(!MathIsValidNumber(value))
      m_bad_numbers++;
   m_text+=JsonNumber(value,digits);
  }

void CJsonWriter::BeginObject(void)
  {
   Separator();
   m_text+="{";
   m_first=true;
  }

void CJsonWriter::EndObject(void)
  {
   m_text+="}";
   m_first=false;
  }

void CJsonWriter::BeginArray(const string key)
  {
   WriteKey(key);
   m_text+="[";
   m_first=true;
  }

void CJsonWriter::EndArray(void)
  {
   m_text+="]";
   m_first=false;
  }

void CJsonWriter::Int(const string key,const long value)
  {
   WriteKey(key);
   m_text+=IntegerToString(value);
  }

void CJsonWriter::Num(const string key,const double value,const int digits)
  {
   WriteKey(key);
   WriteNumber(value,digits);
  }

void CJsonWriter::Str(const string key,const string value)
  {
   WriteKey(key);
   WriteString(value);
  }

void CJsonWriter::Null(const string key)
  {
   WriteKey(key);
   m_text+="null";
  }

void CJsonWriter::ItemInt(const long value)
  {
   Separator();
   m_text+=IntegerToString(value);
  }

void CJsonWriter::ItemNum(const double value,const int digits)
  {
   Separator();
   WriteNumber(value,digits);
  }

//+------------------------------------------------------------------+
//| Reads one flat JSON object: keys with strings, numbers, true,    |
//| false or null. A nested object or array is skipped (and marked), |
//| since the bridge sends none; a reader asking for it gets an      |
//| error naming the key.                                            |
//+------------------------------------------------------------------+
class CJsonReader
  {
private:
   string            m_text;
   int               m_pos;
   int               m_len;
   string            m_error;
   string            m_keys[];
   string            m_values[];
   int               m_kinds[];
   int               m_count;

   ushort            Peek(void) const;
   void              SkipSpace(void);
   bool              Fail(const string problem);
   bool              ReadString(string &value);
   bool              ReadNumber(string &token);
   bool              ReadLiteral(const string word);
   bool              SkipNested(void);
   bool              ReadValue(string &value,int &kind);
   void              Add(const string key,const string value,const int kind);
   int               HexValue(const ushort c) const;

public:
                     CJsonReader(void);
   bool              Parse(const string text);
   string            Error(void) const { return(m_error); }
   int               Count(void) const { return(m_count); }
   int               Find(const string key) const;
   bool              Has(const string key) const { return(Find(key)>=0); }
   bool              GetString(const string key,string &value,string &problem) const;
   bool              GetLong(const string key,long &value,string &problem) const;
   bool              GetDouble(const string key,double &value,string &problem) const;
  };

CJsonReader::CJsonReader(void)
  {
   m_text="";
   m_pos=0;
   m_len=0;
   m_error="";
   m_count=0;
  }

ushort CJsonReader::Peek(void) const
  {
   if(m_pos>=m_len)
      return(0);
   return(StringGetCharacter(m_text,m_pos));
  }

void CJsonReader::SkipSpace(void)
  {
   while(m_pos<m_len)
     {
      ushort c=StringGetCharacter(m_text,m_pos);
      if(c!=' ' && c!='\t' && c!='\n' && c!='\r')
         break;
      m_pos++;
     }
  }

bool CJsonReader::Fail(const string problem)
  {
   m_error=problem+" at character "+IntegerToString(m_pos);
   return(false);
  }

int CJsonReader::HexValue(const ushort c) const
  {
   if(c>='0' && c<='9')
      return(c-'0');
   if(c>='a' && c<='f')
      return(c-'a'+10);
   if(c>='A' && c<='F')
      return(c-'A'+10);
   return(-1);
  }

//--- a string at m_pos (which is on the opening quote), escapes resolved
bool CJsonReader::ReadString(string &value)
  {
   value="";
   m_pos++;
   int run=m_pos;
   while(m_pos<m_len)
     {
      ushort c=StringGetCharacter(m_text,m_pos);
      if(c=='"')
        {
         if(m_pos>run)
            value+=StringSubstr(m_text,run,m_pos-run);
         m_pos++;
         return(true);
        }
      if(c<0x20)
         return(Fail("control character inside a string"));
      if(c!='\\')
        {
         m_pos++;
         continue;
        }
      if(m_pos>run)
         value+=StringSubstr(m_text,run,m_pos-run);
      if(m_pos+1>=m_len)
         return(Fail("unfinished escape"));
      ushort e=StringGetCharacter(m_text,m_pos+1);
      m_pos+=2;
      if(e=='"')
         value+="\"";
      else if(e=='\\')
         value+="\\";
      else if(e=='/')
         value+="/";
      else if(e=='n')
         value+="\n";
      else if(e=='r')
         value+="\r";
      else if(e=='t')
         value+="\t";
      else if(e=='b')
         value+=ShortToString(8);
      else if(e=='f')
         value+=ShortToString(12);
      else if(e=='u')
        {
         // MQL5 strings are UTF-16: each \uXXXX, surrogate halves included, is one character
         if(m_pos+4>m_len)
            return(Fail("unfinished \\u escape"));
         int code=0;
         for(int k=0; k<4; k++)
           {
            int digit=HexValue(StringGetCharacter(m_text,m_pos+k));
            if(digit<0)
               return(Fail("bad \\u escape"));
            code=code*16+digit;
           }
         m_pos+=4;
         value+=ShortToString((ushort)code);
        }
      else
         return(Fail("unknown escape"));
      run=m_pos;
     }
   return(Fail("unterminated string"));
  }

//--- a number token, checked against JSON's grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
bool CJsonReader::ReadNumber(string &token)
  {
   int start=m_pos;
   if(Peek()=='-')
      m_pos++;
   ushort c=Peek();
   if(c=='0')
      m_pos++;
   else if(c>='1' && c<='9')
     {
      while(Peek()>='0' && Peek()<='9')
         m_pos++;
     }
   else
      return(Fail("bad number"));
   if(Peek()=='.')
     {
      m_pos++;
      if(!(Peek()>='0' && Peek()<='9'))
         return(Fail("bad number"));
      while(Peek()>='0' && Peek()<='9')
         m_pos++;
     }
   if(Peek()=='e' || Peek()=='E')
     {
      m_pos++;
      if(Peek()=='+' || Peek()=='-')
         m_pos++;
      if(!(Peek()>='0' && Peek()<='9'))
         return(Fail("bad number"));
      while(Peek()>='0' && Peek()<='9')
         m_pos++;
     }
   token=StringSubstr(m_text,start,m_pos-start);
   return(true);
  }

bool CJsonReader::ReadLiteral(const string word)
  {
   int n=StringLen(word);
   if(StringSubstr(m_text,m_pos,n)!=word)
      return(Fail("unknown literal"));
   m_pos+=n;
   return(true);
  }

//--- an object or array the protocol does not put in a bridge message: stepped over, strings respected
bool CJsonReader::SkipNested(void)
  {
   int depth=0;
   while(m_pos<m_len)
     {
      ushort c=StringGetCharacter(m_text,m_pos);
      if(c=='"')
        {
         string ignored;
         if(!ReadString(ignored))
            return(false);
         continue;
        }
      if(c=='{' || c=='[')
         depth++;
      if(c=='}' || c==']')
        {
         depth--;
         if(depth==0)
           {
            m_pos++;
            return(true);
           }
        }
      m_pos++;
     }
   return(Fail("unterminated object or array"));
  }

bool CJsonReader::ReadValue(string &value,int &kind)
  {
   ushort c=Peek();
   value="";
   if(c=='"')
     {
      kind=JSON_KIND_STRING;
      return(ReadString(value));
     }
   if(c=='-' || (c>='0' && c<='9'))
     {
      kind=JSON_KIND_NUMBER;
      return(ReadNumber(value));
     }
   if(c=='t')
     {
      kind=JSON_KIND_TRUE;
      return(ReadLiteral("true"));
     }
   if(c=='f')
     {
      kind=JSON_KIND_FALSE;
      return(ReadLiteral("false"));
     }
   if(c=='n')
     {
      kind=JSON_KIND_NULL;
      return(ReadLiteral("null"));
     }
   if(c=='{' || c=='[')
     {
      kind=JSON_KIND_NESTED;
      return(SkipNested());
     }
   return(Fail("value expected"));
  }

void CJsonReader::Add(const string key,const string value,const int kind)
  {
   int n=m_count+1;
   ArrayResize(m_keys,n,16);
   ArrayResize(m_values,n,16);
   ArrayResize(m_kinds,n,16);
   m_keys[m_count]=key;
   m_values[m_count]=value;
   m_kinds[m_count]=kind;
   m_count=n;
  }

bool CJsonReader::Parse(const string text)
  {
   m_text=text;
   m_pos=0;
   m_len=StringLen(text);
   m_error="";
   m_count=0;
   SkipSpace();
   if(Peek()!='{')
      return(Fail("a JSON object expected"));
   m_pos++;
   SkipSpace();
   if(Peek()=='}')
     {
      m_pos++;
     }
   else
     {
      while(true)
        {
         SkipSpace();
         if(Peek()!='"')
            return(Fail("a key expected"));
         string key;
         if(!ReadString(key))
            return(false);
         SkipSpace();
         if(Peek()!=':')
            return(Fail("':' expected"));
         m_pos++;
         SkipSpace();
         string value;
         int kind=0;
         if(!ReadValue(value,kind))
            return(false);
         if(Find(key)>=0)
            return(Fail("key '"+key+"' given twice"));
         Add(key,value,kind);
         SkipSpace();
         ushort c=Peek();
         m_pos++;
         if(c=='}')
            break;
         if(c!=',')
            return(Fail("',' or '}' expected"));
        }
     }
   SkipSpace();
   if(m_pos<m_len)
      return(Fail("text after the object"));
   return(true);
  }

int CJsonReader::Find(const string key) const
  {
   for(int i=0; i<m_count; i++)
      if(m_keys[i]==key)
         return(i);
   return(-1);
  }

//--- a string field; null reads as "" (how the protocol treats free text)
bool CJsonReader::GetString(const string key,string &value,string &problem) const
  {
   int i=Find(key);
   if(i<0)
     {
      problem=key+": missing";
      return(false);
     }
   if(m_kinds[i]==JSON_KIND_NULL)
     {
      value="";
      return(true);
     }
   if(m_kinds[i]!=JSON_KIND_STRING)
     {
      problem=key+": not a string";
      return(false);
     }
   value=m_values[i];
   return(true);
  }

//--- an integer field: a JSON number without fraction or exponent that fits a long
bool CJsonReader::GetLong(const string key,long &value,string &problem) const
  {
   int i=Find(key);
   if(i<0)
     {
      problem=key+": missing";
      return(false);
     }
   string token=m_values[i];
   if(m_kinds[i]!=JSON_KIND_NUMBER || StringFind(token,".")>=0 || StringFind(token,"e")>=0 || StringFind(token,"E")>=0)
     {
      problem=key+": not an integer";
      return(false);
     }
   // a long holds 19 digits up to 9223372036854775807: longer or larger is out of range
   string magnitude=token;
   if(StringGetCharacter(token,0)=='-')
      magnitude=StringSubstr(token,1);
   int digits=StringLen(magnitude);
   if(digits>19 || (digits==19 && StringCompare(magnitude,"9223372036854775807")>0))
     {
      problem=key+": integer out of range";
      return(false);
     }
   value=StringToInteger(token);
   return(true);
  }

bool CJsonReader::GetDouble(const string key,double &value,string &problem) const
  {
   int i=Find(key);
   if(i<0)
     {
      problem=key+": missing";
      return(false);
     }
   if(m_kinds[i]!=JSON_KIND_NUMBER)
     {
      problem=key+": not a number";
      return(false);
     }
   value=StringToDouble(m_values[i]);
   if(!MathIsValidNumber(value))
     {
      problem=key+": not a finite number";
      return(false);
     }
   return(true);
  }

#endif // MT5B_JSON_MQH
